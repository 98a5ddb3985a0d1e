// A plugin whose core module has a start function that loops forever. The
// start function runs inside instantiation, before `run`: the watchdog's
// clock must already be running there. Each incarnation is killed within
// budget + 100 ms of CPU and logged as killed; after 5 deaths at start the plugin is
// stopped with WASMUX_ERR_CRASH_LOOP. An echo neighbour keeps answering.
//
// Nothing can log from a start function (its imports trap), so when the
// loop began is measured against a control: a plugin whose start function
// traps at once. For both, the time from "restarting in X ms" to the next
// end, less X, is the worker's start-up plus, for the loop, the time to the
// kill; the difference of the two medians is the kill's delay.
import { describe, it, expect, afterEach } from 'vitest';
import { KILL_WALL_GUARD_MS, Neighbour, cleanUp, dump, host, type Hosted, withTimeout } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const BUDGET_MS = 100;
const KILLED = new RegExp(`^killed: ran (\\d+) ms( of CPU)? without returning to poll\\.wait \\(cpu budget ${BUDGET_MS} ms\\)$`);

const withStart = (start: string) => `(module
  ${IMPORTS}
  ${runtime()}
  (func $start ${start})
  (start $start)
  ${listenThen()})`;

/** Waits for the crash loop; returns, per restart, the time from "restarting in X ms" to the next end line, less X. */
async function crashLoop(p: Hosted, end: RegExp): Promise<number[]> {
  const err = await withTimeout(
    p.server.ready.then(
      () => null,
      (e: Error & { code?: string }) => e,
    ),
    20_000,
    'crash loop',
  );
  expect(err?.code, dump(p.logs)).toBe('WASMUX_ERR_CRASH_LOOP');
  await withTimeout(p.server.finished(), 5000, 'finished()');
  const restarts = p.lines(/^restarting in \d+ ms$/);
  const ends = p.lines(end);
  expect(restarts, dump(p.logs)).toHaveLength(4);
  expect(ends, dump(p.logs)).toHaveLength(5);
  return restarts.map((r, i) => ends[i + 1]!.at - r.at - Number(/\d+/.exec(r.message)![0]));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

describe('a plugin whose start function loops forever', () => {
  it(`is killed within budget + 100 ms (budget ${BUDGET_MS} ms) at every start, then stopped as a crash loop; its neighbour keeps answering`, async () => {
    const control = await watPlugin('start-trap', withStart('unreachable'));
    const looping = await watPlugin('start-loop', withStart('(loop $forever (br $forever))'));
    const base = await baseline();
    const neighbour = await Neighbour.start();

    const c = await host(control, { policy: { cpuBudgetMs: BUDGET_MS }, waitReady: false });
    // The WAT names its start function: the trap says where it was.
    const startUp = await crashLoop(c, /^trapped: unreachable \(in start\)$/);
    await c.stop();

    const p = await host(looping, { policy: { cpuBudgetMs: BUDGET_MS }, waitReady: false });
    const toKill = await crashLoop(p, /^killed: /);
    const delay = median(toKill) - median(startUp);
    const cpu = p.lines(KILLED).map((l) => Number(KILLED.exec(l.message)![1]));
    console.log(
      `start-loop, budget ${BUDGET_MS} ms: start-up ${startUp.map((x) => x.toFixed(0)).join(', ')} ms (control); ` +
        `start-up + kill ${toKill.map((x) => x.toFixed(0)).join(', ')} ms; kill ${delay.toFixed(0)} ms after the loop began (medians); ` +
        `the watchdog counted ${cpu.join(', ')} ms of CPU`,
    );
    expect(cpu, dump(p.logs)).toHaveLength(5);
    for (const ms of cpu) {
      expect(ms).toBeGreaterThanOrEqual(BUDGET_MS);
      expect(ms).toBeLessThan(BUDGET_MS + 100);
    }
    // In wall time only a guard (helpers/hostile.ts: expectKilledOnTime says why).
    expect(delay).toBeLessThan(BUDGET_MS + (KILLED.exec(p.lines(KILLED)[0]!.message)![2] ? KILL_WALL_GUARD_MS : 100));
    expect(p.count(/failed 5 times in a row at start \(last: killed: /)).toBe(1);
    expect(p.server.stats()[0]).toMatchObject({ running: false, restarts: 4, ends: { killed: 5 } });

    await expectContained({ hostile: p, neighbour, base, cause: KILLED, minEnds: 5 });
  }, 60_000);
});
