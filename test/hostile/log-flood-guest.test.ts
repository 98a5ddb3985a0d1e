// A plugin that becomes ready, then calls its own `log` in a tight loop for
// 3 s (a wait with timeout 0 every 2048 rounds keeps the watchdog away). Its
// lines are limited to the documented rate (a burst of 200, then 100 per
// second), the rest are counted and reported in summary lines, and none is
// lost: the lines written plus the counts of the summaries equal the calls
// the plugin says it made. Host RSS stays bounded, the neighbour keeps
// echoing; through `wasmux run`, stderr stays within what the rate allows.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, host } from '../helpers/hostile.js';
import { baseline, expectContained, logBudget } from '../helpers/containment.js';
import { watPlugin } from '../helpers/wat.js';
import {
  CALLS_MADE,
  FLOOD_SECONDS,
  floodModule,
  MAX_LINE_BYTES,
  floodThroughCli,
  parseSummary,
  totalSuppressed,
} from '../helpers/log-flood.js';

afterEach(cleanUp);

const LINE = 'a guest line, again and again';
const plugin = () =>
  watPlugin(
    'log-flood-guest',
    floodModule(`(call $log (i32.const 2) (i32.const 8192) (i32.const ${LINE.length}))`, 1, `(data (i32.const 8192) "${LINE}")`),
  );

/** The longest line written for this plugin (a summary), with room to spare. */

describe('a plugin logging in a tight loop', () => {
  it('gets its lines limited to the documented rate, with summaries counting every suppressed one; its neighbour keeps echoing', async () => {
    const wasm = await plugin();
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(wasm);
    const made = await p.line(CALLS_MADE, 1, (FLOOD_SECONDS + 10) * 1000);
    const calls = Number(CALLS_MADE.exec(made.message)![1]);

    const written = p.logs.filter((l) => l.message === LINE);
    const summaries = p.logs.filter((l) => parseSummary(l.message) !== null);
    const suppressed = totalSuppressed(p.logs.map((l) => l.message));
    console.log(
      `log-flood-guest: ${calls} log calls in ${FLOOD_SECONDS} s; ${written.length} written, ` +
        `${suppressed.guest} suppressed in ${summaries.length} summaries; ${p.logs.length} log lines in all`,
    );

    expect(calls).toBeGreaterThan(10 * logBudget(FLOOD_SECONDS, 1));
    expect(written.length + suppressed.guest, dump(summaries)).toBe(calls);
    expect(suppressed.denials + suppressed.osErrors + suppressed.other).toBe(0);
    for (const l of written) expect(l).toMatchObject({ level: 'info', origin: 'guest', instance: 0 });
    for (const l of summaries) expect(l).toMatchObject({ level: 'warn', origin: 'host', instance: 0 });
    expect(summaries.length).toBeGreaterThanOrEqual(FLOOD_SECONDS - 1);
    expect(summaries.length).toBeLessThanOrEqual(FLOOD_SECONDS + 2);
    expect(summaries.at(-1)!.at).toBeLessThan(made.at);

    await expectContained({ hostile: p, neighbour, base, cause: /(?!)/, minEnds: 0 });
  }, 60_000);

  it("keeps `wasmux run`'s stderr within the rate (bytes and lines) and its RSS bounded, beside a working echo plugin", async () => {
    const wasm = await plugin();
    const { name, calls, seconds, mine, bytes, rss0, rssMax, echoes, slowestMs, echoProblems } = await floodThroughCli(wasm);
    const written = mine.filter((l) => l === `${name}[0] guest info: ${LINE}`).length;
    const suppressed = totalSuppressed(mine.map((l) => l.replace(/^\S+ warn: /, '')));
    const budget = logBudget(seconds, 1);
    console.log(
      `wasmux run, log-flood-guest: ${calls} log calls; the plugin's stderr: ${mine.length} lines, ${bytes} bytes ` +
        `(budget ${budget} lines x ${MAX_LINE_BYTES} bytes); RSS ${rss0.toFixed(0)} -> at most ${rssMax.toFixed(0)} MiB; ${echoes} echoes meanwhile, slowest ${slowestMs.toFixed(0)} ms`,
    );

    expect(calls).toBeGreaterThan(10 * budget);
    expect(written + suppressed.guest).toBe(calls);
    expect(mine.length).toBeLessThanOrEqual(budget);
    for (const l of mine) expect(Buffer.byteLength(l)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(bytes).toBeLessThanOrEqual(budget * MAX_LINE_BYTES);
    expect(rssMax - rss0).toBeLessThan(200);
    expect(echoes).toBeGreaterThan(5);
    expect(slowestMs).toBeLessThan(2000);
    expect(echoProblems).toEqual([]);
  }, 60_000);
});
