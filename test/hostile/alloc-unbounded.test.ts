// A plugin that allocates without bound (assembly/test-plugins/
// alloc-unbounded), under a 16 MiB memory cap: each incarnation dies at the
// cap (memory.grow fails inside the module, the allocator traps), the trap is
// logged once naming the memory, the instance is restarted, and over repeated
// restarts the RSS of this process (which holds every worker) stays bounded.
// An echo plugin served beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, connect, dump, endOf, fdBaseline, host, rssMiB, settleFds, sleep, testPlugin } from '../helpers/hostile.js';

afterEach(cleanUp);

const ROUNDS = 8;
const CAP_MIB = 16;
const RSS_BOUND_MIB = 150;

describe('a plugin allocating without bound', () => {
  it(`dies at its ${CAP_MIB} MiB cap and is restarted, ${ROUNDS} times, with this process's RSS growing less than ${RSS_BOUND_MIB} MiB; its neighbour keeps echoing`, async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const p = await host(testPlugin('alloc-unbounded'), { policy: { maxMemoryMiB: CAP_MIB } });
    const rss0 = rssMiB();
    let rssMax = rss0;
    // Sampled all along, so that the peak of each dying instance counts.
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMiB())), 5);
    const deathMs: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Deaths within 2 s of a start count as "at start" (5 in a row is a crash
      // loop): let the instance of round 5 live long enough to reset that count.
      if (round === 5) {
        const up = p.lines(/^listening on /).at(-1)!;
        await sleep(Math.max(0, 2100 - (performance.now() - up.at)));
      }
      const sock = await connect(p.port);
      sock.write('x');
      const allocating = await p.line(/^allocating without bound$/, round);
      const trapped = await p.line(/^trapped: /, round, 10_000);
      deathMs.push(trapped.at - allocating.at);
      const m = /^trapped: unreachable \(linear memory ([\d.]+) MiB of (\d+) MiB allowed\)$/.exec(trapped.message);
      expect(m, trapped.message).not.toBeNull();
      expect(Number(m![2])).toBe(CAP_MIB);
      // It died at the cap: memory.grow failed within the last block's size of it.
      expect(Number(m![1])).toBeLessThanOrEqual(CAP_MIB);
      expect(Number(m![1])).toBeGreaterThan(CAP_MIB - 1);
      await endOf(sock);
      await p.line(/^listening on /, round + 1, 10_000);
    }
    clearInterval(sampler);
    const growth = rssMax - rss0;
    console.log(
      `alloc-unbounded: died at the cap ${deathMs.map((x) => x.toFixed(0)).join(', ')} ms after it started allocating; ` +
        `RSS ${rss0.toFixed(0)} MiB at start, at most ${rssMax.toFixed(0)} MiB over ${ROUNDS} restarts (growth ${growth.toFixed(0)} MiB)`,
    );
    expect(growth).toBeLessThan(RSS_BOUND_MIB);

    expect(p.count(/^trapped: /), dump(p.logs)).toBe(ROUNDS);
    expect(
      p.logs.filter((l) => l.level === 'error'),
      dump(p.logs),
    ).toHaveLength(ROUNDS);
    const st = p.server.stats()[0]!;
    expect(st.ends).toEqual({ trapped: ROUNDS });
    expect(st.restarts).toBe(ROUNDS);
    expect(p.server.failed).toBeNull();

    expect(await neighbour.finish()).toBeGreaterThan(20);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 40_000);
});
