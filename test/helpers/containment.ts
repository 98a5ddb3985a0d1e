/**
 * What every hostile-plugin test must show (the sandbox's promise): the host
 * process survives, a well-behaved neighbour keeps answering within 2 s,
 * every end of the hostile instance is logged once with its cause (never
 * `crashed`, which would mean a host bug), descriptors come back to their
 * baseline, RSS stays within 200 MiB of its baseline, and the hostile
 * plugin's log volume stays within the documented rate.
 */
import { expect } from 'vitest';
import { Neighbour, cleanUp, dump, fdBaseline, host, rssMiB, settleFds, type Hosted } from './hostile.js';

export interface Baseline {
  fds: number;
  rssMiB: number;
  /** performance.now() when the baseline was taken. */
  at: number;
}

export async function baseline(): Promise<Baseline> {
  return { fds: await fdBaseline(), rssMiB: rssMiB(), at: performance.now() };
}

/** The log lines a host writes for the end of an instance (plugin-server.ts; origin 'host': a guest may log the same text). */
export const END_LINE = /^(returned|failed|trapped|killed|crashed|stopped): /;

/**
 * The documented log rate for lines written on a guest's behalf: a burst of
 * 200, then 100 per second, per instance; plus the host's own lines about
 * each incarnation (its end, its restart, a summary), at most 4 each.
 */
export function logBudget(seconds: number, incarnations: number): number {
  return 200 + Math.ceil(100 * seconds) + 4 * incarnations;
}

export interface ContainedOptions {
  hostile: Hosted;
  neighbour: Neighbour;
  base: Baseline;
  /** Every end line of the hostile plugin must match this (e.g. /^killed: .*budget/). */
  cause: RegExp;
  /** At least this many ends (default 1). */
  minEnds?: number;
}

/**
 * Runs the checks, in this order: the neighbour (while the hostile plugin is
 * still running), the end lines and the log volume, then stops both and
 * checks descriptors and RSS.
 */
export async function expectContained(o: ContainedOptions): Promise<void> {
  const { hostile, neighbour, base } = o;
  const good = await neighbour.finish();
  expect(neighbour.failures, 'the neighbour kept answering within 2 s').toEqual([]);
  expect(good).toBeGreaterThan(0);
  expect(neighbour.maxMs).toBeLessThan(2000);

  const ends = hostile.server.stats().reduce((n, s) => n + Object.values(s.ends).reduce((a, b) => a + b, 0), 0);
  const endLines = hostile.logs.filter((l) => l.origin === 'host' && l.level === 'error' && END_LINE.test(l.message));
  expect(ends, `ends counted; log:\n${dump(hostile.logs)}`).toBeGreaterThanOrEqual(o.minEnds ?? 1);
  expect(endLines.length, `one end line per end; log:\n${dump(hostile.logs)}`).toBe(ends);
  for (const l of endLines) expect(l.message).toMatch(o.cause);
  expect(endLines.filter((l) => /^crashed: /.test(l.message))).toEqual([]);

  const seconds = (performance.now() - base.at) / 1000;
  const incarnations = hostile.server.stats().reduce((n, s) => n + s.restarts + 1, 0);
  expect(hostile.logs.length, `log volume within the documented rate; log:\n${dump(hostile.logs.slice(0, 50))}`).toBeLessThanOrEqual(
    logBudget(seconds, incarnations),
  );

  expect(rssMiB() - base.rssMiB, 'RSS within 200 MiB of its baseline').toBeLessThan(200);
  await hostile.stop();
  await neighbour.echo.stop();
  expect(await settleFds(base.fds), 'descriptors back to baseline').toBe(base.fds);
}

export interface Refusal {
  /** What the case is, for failure messages. */
  name: string;
  /** The plugin file (built before the call: jco closes its descriptors lazily). */
  file: string;
  code: string;
  message: RegExp;
}

/**
 * A plugin refused at load or start hurts nothing either: each of `cases` is
 * served beside a neighbour and must be refused with its code and message,
 * while the neighbour keeps answering, RSS stays within 200 MiB and
 * descriptors come back to their baseline.
 */
export async function expectRefused(cases: readonly Refusal[]): Promise<void> {
  const base = await baseline();
  const neighbour = await Neighbour.start();
  for (const c of cases) {
    const err = await host(c.file).then(
      () => null,
      (e: { code: string; message: string }) => e,
    );
    expect(err, `${c.name}: refused`).not.toBeNull();
    expect({ name: c.name, code: err!.code }).toEqual({ name: c.name, code: c.code });
    expect(err!.message, c.name).toMatch(c.message);
  }
  expect(await neighbour.finish()).toBeGreaterThan(0);
  expect(neighbour.failures, 'the neighbour kept answering within 2 s').toEqual([]);
  expect(rssMiB() - base.rssMiB, 'RSS within 200 MiB of its baseline').toBeLessThan(200);
  await cleanUp();
  expect(await settleFds(base.fds), 'descriptors back to baseline').toBe(base.fds);
}
