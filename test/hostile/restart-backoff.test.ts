// Restarts back off for every death, not only deaths at start.
//
// 1. A plugin that becomes ready (it listens) and traps at once (a raw WAT
//    plugin: listen, then `unreachable`). Each incarnation counts as
//    started, so the crash-loop rule never gives up on it; it used to be
//    restarted after 100 ms every time (36-40 restarts in 5 s). Now the
//    delays double, 100, 200, 400, 800, 1600 ms...: at most 6 restarts in
//    5 s, each "restarting in N ms" line naming the delay really waited.
// 2. The count of deaths in a row ends only when an incarnation stays up 10 s
//    (twice the longest delay): a plugin trapping on request
//    (assembly/test-plugins/trap-mid-request) is restarted after 100, then
//    200 ms; once it has served for 10 s its next death is restarted after
//    100 ms again, and the one after that 200 ms.
// An echo plugin served beside them keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, connect, dump, endOf, host, readUntil, sleep, testPlugin, type Hosted } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const WINDOW_MS = 5000;
const DOUBLING = [100, 200, 400, 800, 1600, 3200, 5000, 5000];
/** README: an incarnation up this long ends a run of deaths. */
const STABLE_MS = 10_000;
const TRAPPED = /^trapped: unreachable \(linear memory [\d.]+ MiB of 64 MiB allowed\)$/;

const delays = (p: Hosted) => p.lines(/^restarting in \d+ ms$/).map((l) => Number(/(\d+)/.exec(l.message)![1]));

describe('a plugin that gets ready and then traps at once', () => {
  it(`is restarted after 100, 200, 400, 800, 1600 ms..., at most 6 times in ${WINDOW_MS / 1000} s; its neighbour keeps echoing`, async () => {
    const plugin = await watPlugin('ready-then-trap', `(module ${IMPORTS} ${runtime()} ${listenThen('unreachable', { loop: false })})`);
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(plugin); // ready at the first listen
    const t = performance.now();
    await sleep(WINDOW_MS);
    const st = p.server.stats()[0]!;
    const logged = delays(p);
    const traps = p.lines(/^trapped: /);
    // Gaps between one death and the next: the delay plus a worker's start-up.
    const gaps = traps.slice(1).map((l, i) => l.at - traps[i]!.at);
    console.log(
      `restart-backoff: ${st.restarts} restarts in ${((performance.now() - t) / 1000).toFixed(1)} s; ` +
        `delays ${logged.join(', ')} ms; deaths ${gaps.map((g) => g.toFixed(0)).join(', ')} ms apart`,
    );

    expect(st.restarts, dump(p.logs)).toBeLessThanOrEqual(6);
    expect(st.restarts).toBeGreaterThanOrEqual(4);
    expect(logged.length).toBeGreaterThanOrEqual(5);
    expect(logged).toEqual(DOUBLING.slice(0, logged.length));
    // The line names the delay waited: each death came at least that long after the one before.
    gaps.forEach((g, i) => expect(g, `gap ${i}`).toBeGreaterThanOrEqual(logged[i]! - 2));
    for (const l of traps) expect(l.message).toMatch(TRAPPED);
    // Ready every time: not a crash loop, it is never given up on.
    expect(p.server.failed).toBeNull();
    expect(p.count(/crash|in a row/)).toBe(0);
    await expectContained({ hostile: p, neighbour, base, cause: TRAPPED, minEnds: 5 });
  }, 30_000);
});

describe('a plugin that dies, then serves for a while, then dies again', () => {
  it(`is restarted after 100 ms again once an incarnation stayed up ${STABLE_MS / 1000} s; its neighbour keeps echoing`, async () => {
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(testPlugin('trap-mid-request'));
    const trap = async (n: number) => {
      const sock = await connect(p.port);
      sock.write('trap\n');
      await endOf(sock);
      await p.line(/^restarting in \d+ ms$/, n, 5000);
      await p.line(/^listening on /, n + 1, 10_000);
    };
    await trap(1);
    await trap(2);
    // Let the third incarnation serve past STABLE_MS (it answers meanwhile).
    const up = p.lines(/^listening on /).at(-1)!;
    const still = await connect(p.port);
    still.write('hello\n');
    expect(await readUntil(still, /\n/)).toBe('hello\n');
    await sleep(Math.max(0, STABLE_MS + 300 - (performance.now() - up.at)));
    still.destroy();
    await trap(3);
    await trap(4);
    expect(delays(p), dump(p.logs)).toEqual([100, 200, 100, 200]);

    expect(p.count(/^trapped: /)).toBe(4);
    const st = p.server.stats()[0]!;
    expect(st).toMatchObject({ restarts: 4, ends: { trapped: 4 } });
    expect(p.server.failed).toBeNull();
    await expectContained({ hostile: p, neighbour, base, cause: TRAPPED, minEnds: 4 });
  }, 40_000);
});
