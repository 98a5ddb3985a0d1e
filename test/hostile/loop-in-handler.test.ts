// A plugin that serves normally, then spins inside a connection handler
// (assembly/test-plugins/loop-in-handler: it loops once it has read a byte).
// The watchdog kills it within cpuBudget + 100 ms of CPU (helpers/hostile.ts:
// expectKilledOnTime says what a test on a shared machine can hold); the
// supervisor closes every descriptor the dead instance held (its clients see
// their connections end) and restarts it, listening again on the same port.
// An echo plugin served beside it keeps echoing; each death is logged once.
import { describe, it, expect, afterEach } from 'vitest';
import {
  Neighbour,
  cleanUp,
  connect,
  dump,
  endOf,
  expectKilledOnTime,
  fdBaseline,
  host,
  msSinceLoop,
  settleFds,
  testPlugin,
  waitFor,
} from '../helpers/hostile.js';

afterEach(cleanUp);

const ROUNDS = 3;

async function loopInHandler(budget: number | undefined) {
  const b = budget ?? 200;
  const baseline = await fdBaseline();
  const neighbour = await Neighbour.start();
  const loop = await host(testPlugin('loop-in-handler'), { policy: budget ? { cpuBudgetMs: budget } : {} });
  const killMs: number[] = [];
  const killLines: string[] = [];
  const restartMs: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    // A bystander connection on the same instance, and the one that triggers the loop.
    const bystander = await connect(loop.port);
    expect(await waitFor(() => loop.server.stats()[0]!.open === 1, 5000)).toBe(true);
    const trigger = await connect(loop.port);
    trigger.write('x');
    const looping = await loop.line(/^looping since \d+$/, round);
    const killed = await loop.line(/^killed: /, round, 5000);
    killMs.push(msSinceLoop(looping, killed.ns));
    killLines.push(killed.message);
    expect(killed.message).toMatch(new RegExp(`^killed: ran \\d+ ms( of CPU)? without returning to poll\\.wait \\(cpu budget ${b} ms\\)$`));
    // The dead instance's sockets were closed by the supervisor: both clients see the end.
    await Promise.all([endOf(bystander), endOf(trigger)]);
    // Restarted: listening again on the same port.
    const relisten = await loop.line(/^listening on /, round + 1, 10_000);
    restartMs.push(Number(relisten.ns - killed.ns) / 1e6);
    expect(await waitFor(() => loop.server.stats()[0]!.running, 5000)).toBe(true);
  }
  console.log(
    `loop-in-handler, budget ${b} ms: killed ${killMs.map((x) => x.toFixed(0)).join(', ')} ms after the loop started; ` +
      `listening again ${restartMs.map((x) => x.toFixed(0)).join(', ')} ms after each kill (backoff 100, 200, 400 ms included)`,
  );
  killMs.forEach((ms, i) => expectKilledOnTime(killLines[i]!, ms, b));
  // Each restart: the backoff (100, 200, 400 ms: these deaths came soon after start) plus a worker's start-up.
  restartMs.forEach((ms, i) => expect(ms).toBeLessThan(100 * 2 ** i + 1000));

  // The restarted instance serves: it accepts and holds a connection.
  const after = await connect(loop.port);
  expect(await waitFor(() => loop.server.stats()[0]!.open === 1, 5000)).toBe(true);
  after.destroy();

  expect(loop.count(/^killed: /), dump(loop.logs)).toBe(ROUNDS);
  expect(loop.count(/^looping since /)).toBe(ROUNDS);
  expect(
    loop.logs.filter((l) => l.level === 'error'),
    dump(loop.logs),
  ).toHaveLength(ROUNDS);
  const st = loop.server.stats()[0]!;
  expect(st.ends).toEqual({ killed: ROUNDS });
  expect(st.restarts).toBe(ROUNDS);
  expect(loop.server.failed).toBeNull();

  expect(await neighbour.finish()).toBeGreaterThan(20);
  expect(neighbour.failures).toEqual([]);
  await cleanUp();
  expect(await settleFds(baseline)).toBe(baseline);
}

describe('a plugin looping inside a handler', () => {
  it(`is killed within budget + 100 ms (budget 100 ms) and restarted, ${ROUNDS} times; its neighbour keeps echoing`, async () => {
    await loopInHandler(100);
  }, 30_000);

  it('is killed within budget + 100 ms at the default budget (200 ms)', async () => {
    await loopInHandler(undefined);
  }, 30_000);
});
