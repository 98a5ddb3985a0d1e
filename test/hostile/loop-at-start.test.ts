// A plugin that spins before it ever reaches poll.wait
// (assembly/test-plugins/loop-at-start): the watchdog kills each incarnation
// within cpuBudget + 100 ms of the loop starting, the supervisor restarts it
// with backoff, and after 5 deaths at start gives up with
// WASMUX_ERR_CRASH_LOOP. An echo plugin served beside it in this process
// keeps echoing throughout; each death is logged exactly once; every
// descriptor is closed.
import { describe, it, expect, afterEach } from 'vitest';
import {
  Neighbour,
  cleanUp,
  dump,
  expectKilledOnTime,
  fdBaseline,
  host,
  msSinceLoop,
  settleFds,
  sleep,
  testPlugin,
  withTimeout,
} from '../helpers/hostile.js';

afterEach(cleanUp);

const KILLED = /^killed: ran \d+ ms( of CPU)? without returning to poll\.wait \(cpu budget \d+ ms\)$/;

async function crashLoop(budget: number | undefined) {
  const baseline = await fdBaseline();
  const neighbour = await Neighbour.start();
  const loop = await host(testPlugin('loop-at-start'), { policy: budget ? { cpuBudgetMs: budget } : {}, waitReady: false });
  const err = await withTimeout(
    loop.server.ready.then(
      () => null,
      (e: Error & { code?: string }) => e,
    ),
    15_000,
    'crash loop',
  );
  expect(err?.code).toBe('WASMUX_ERR_CRASH_LOOP');
  expect(loop.server.failed?.code).toBe('WASMUX_ERR_CRASH_LOOP');
  await withTimeout(loop.server.finished(), 5000, 'finished()');
  // Given up on: no sixth incarnation comes.
  await sleep(300);

  const loops = loop.lines(/^looping since \d+$/);
  const kills = loop.lines(/^killed: /);
  expect(loops, dump(loop.logs)).toHaveLength(5);
  expect(kills, dump(loop.logs)).toHaveLength(5);
  for (const k of kills) {
    expect(k.message).toMatch(KILLED);
    expect(k.level).toBe('error');
    expect(k.source).toBe('loop-at-start');
    expect(k.instance).toBe(0);
  }
  expect(loop.count(/WASMUX_ERR_CRASH_LOOP|failed 5 times in a row at start/)).toBe(1);
  // Each death: killed within budget + 100 ms (of CPU where the OS has a thread clock) of its loop starting.
  const b = budget ?? 200;
  const killMs = kills.map((k, i) => msSinceLoop(loops[i]!, k.ns));
  const restartMs = kills.slice(0, 4).map((k, i) => Number(loops[i + 1]!.ns - k.ns) / 1e6);
  console.log(
    `loop-at-start, budget ${b} ms: killed after ${killMs.map((x) => x.toFixed(0)).join(', ')} ms; ` +
      `restarted (next loop running) ${restartMs.map((x) => x.toFixed(0)).join(', ')} ms after each kill (backoff 100, 200, 400, 800)`,
  );
  killMs.forEach((ms, i) => expectKilledOnTime(kills[i]!.message, ms, b));
  const st = loop.server.stats()[0]!;
  expect(st.restarts).toBe(4);
  expect(st.ends).toEqual({ killed: 5 });
  expect(st.running).toBe(false);

  expect(await neighbour.finish()).toBeGreaterThan(20);
  expect(neighbour.failures).toEqual([]);
  await cleanUp();
  expect(await settleFds(baseline)).toBe(baseline);
}

describe('a plugin looping at start', () => {
  it('is killed within budget + 100 ms (budget 100 ms), 5 times, then stopped as a crash loop; its neighbour keeps echoing', async () => {
    await crashLoop(100);
  }, 30_000);

  it('is killed within budget + 100 ms at the default budget (200 ms)', async () => {
    await crashLoop(undefined);
  }, 30_000);
});
