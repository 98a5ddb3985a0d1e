// A plugin that becomes ready, then calls tcp.listen on an address its
// policy does not list and tcp.connect with no outbound rule, in a tight
// loop for 3 s (a wait with timeout 0 every 2048 rounds keeps the watchdog
// away). Every call gets `denied`; the host's denial lines go through the
// instance's log limiter (a burst of 200, then 100 per second), the rest are
// counted and reported in summary lines, and nothing is lost: the denial
// lines written plus the counts of the summaries equal the calls the plugin
// says it made. Host RSS stays bounded, the neighbour keeps echoing; through
// `wasmux run`, stderr stays within what the rate allows.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, host } from '../helpers/hostile.js';
import { END_LINE, baseline, expectContained, logBudget } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';
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

// listen 10.0.0.1:9 (not the plugin's address) and connect 127.0.0.1:9 (no rule): both denied.
const DENIED_CALLS = `
  (call $listen (i32.const 0) (i32.const 10) (i32.const 0) (i32.const 0) (i32.const 1)
    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 1024))
  (call $connect (i32.const 0) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1)
    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 1024))`;

const plugin = () => watPlugin('log-flood-denials', floodModule(DENIED_CALLS, 2));

/** Denied calls the spinning plugin makes before it spins. */
const BEFORE_SPIN = 100_000;
// Listens, makes BEFORE_SPIN denied listen calls (a wait every 2048), then spins until the watchdog kills it.
const floodThenSpin = () =>
  watPlugin(
    'log-flood-then-spin',
    `(module
  ${IMPORTS}
  ${runtime()}
  (func $floodThenSpin (local $i i32)
    (loop $again
      (call $listen (i32.const 0) (i32.const 10) (i32.const 0) (i32.const 0) (i32.const 1)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 1024))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.eqz (i32.and (local.get $i) (i32.const 2047)))
        (then (call $wait (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 2048))))
      (br_if $again (i32.lt_u (local.get $i) (i32.const ${BEFORE_SPIN}))))
    (loop $spin (br $spin)))
  ${listenThen('(call $floodThenSpin)', { loop: false })}
)`,
  );
const KILLS = 5;

/** The longest line the host writes for this plugin (a summary naming two kinds), with room to spare. */

describe('a plugin flooding the host with denied listen and connect calls', () => {
  it('gets its denial lines limited to the documented rate, with summaries counting every suppressed one; its neighbour keeps echoing', async () => {
    const wasm = await plugin();
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(wasm);
    const made = await p.line(CALLS_MADE, 1, (FLOOD_SECONDS + 10) * 1000);
    expect(made.origin).toBe('guest');
    const calls = Number(CALLS_MADE.exec(made.message)![1]);

    const denials = p.lines(/^denied: /);
    const summaries = p.logs.filter((l) => parseSummary(l.message) !== null);
    const suppressed = totalSuppressed(p.logs.map((l) => l.message));
    console.log(
      `log-flood-denials: ${calls} denied calls in ${FLOOD_SECONDS} s; ${denials.length} denial lines written, ` +
        `${suppressed.denials} suppressed in ${summaries.length} summaries (${summaries.map((s) => s.message.replace(/ \(log limit.*/, '')).join('; ')}); ` +
        `${p.logs.length} log lines in all`,
    );

    // A flood: far more calls than lines the rate allows.
    expect(calls).toBeGreaterThan(10 * logBudget(FLOOD_SECONDS, 1));
    // Nothing lost, nothing counted twice.
    expect(denials.length + suppressed.denials, dump(summaries)).toBe(calls);
    expect(suppressed.guest + suppressed.osErrors + suppressed.other).toBe(0);
    // Both kinds of denial got through, each naming its address and rule.
    expect(denials.some((l) => l.message === `denied: listen 10.0.0.1:9 (listen addresses are 127.0.0.1:${p.port})`)).toBe(true);
    expect(denials.some((l) => l.message === 'denied: connect 127.0.0.1:9 (no outbound rule allows it)')).toBe(true);
    for (const l of [...denials, ...summaries]) expect(l).toMatchObject({ level: 'warn', origin: 'host', instance: 0 });
    // About one summary per second of flood, the last one while the plugin was quiet, before its last line.
    expect(summaries.length).toBeGreaterThanOrEqual(FLOOD_SECONDS - 1);
    expect(summaries.length).toBeLessThanOrEqual(FLOOD_SECONDS + 2);
    expect(summaries.at(-1)!.at).toBeLessThan(made.at);
    for (const s of summaries) expect(parseSummary(s.message)!.seconds).toBeLessThanOrEqual(1.1);

    await expectContained({ hostile: p, neighbour, base, cause: /(?!)/, minEnds: 0 });
  }, 60_000);

  it(`keeps to the instance's rate across ${KILLS} kills and restarts, and the supervisor counts what each killed incarnation left`, async () => {
    const wasm = await floodThenSpin();
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(wasm);
    await p.line(/^killed: /, KILLS, 30_000);
    // The log up to the last kill, cut at each end: one incarnation's lines per piece.
    const upTo = p.logs.indexOf(p.lines(/^killed: /)[KILLS - 1]!);
    const pieces: (typeof p.logs)[] = [[]];
    for (const l of p.logs.slice(0, upTo + 1)) {
      pieces.at(-1)!.push(l);
      if (l.origin === 'host' && END_LINE.test(l.message)) pieces.push([]);
    }
    pieces.pop();
    const perIncarnation = pieces.map((piece) => ({
      written: piece.filter((l) => /^denied: /.test(l.message)).length,
      suppressed: totalSuppressed(piece.map((l) => l.message)).denials,
    }));
    console.log(
      `log-flood-then-spin: ${BEFORE_SPIN} denied calls per incarnation, then killed; lines written / suppressed: ` +
        perIncarnation.map((x) => `${x.written}/${x.suppressed}`).join(', '),
    );
    expect(pieces).toHaveLength(KILLS);
    // None lost: what each incarnation's limiter had counted when the watchdog killed it is in the supervisor's summary.
    for (const x of perIncarnation)
      expect(x.written + x.suppressed, dump(p.logs.slice(0, upTo + 1).filter((l) => !/^denied/.test(l.message)))).toBe(BEFORE_SPIN);
    // The burst is the instance's, not each incarnation's: the later ones get what refilled meanwhile, not 200 more.
    const later = perIncarnation.slice(1).reduce((n, x) => n + x.written, 0);
    const seconds = (p.lines(/^killed: /)[KILLS - 1]!.at - base.at) / 1000;
    expect(perIncarnation[0]!.written).toBeGreaterThanOrEqual(200);
    expect(perIncarnation[0]!.written + later).toBeLessThanOrEqual(200 + Math.ceil(100 * seconds));
    // Each later one got what refilled during its restart delay (100 ms doubling), never a fresh burst of 200.
    for (const x of perIncarnation.slice(1)) expect(x.written, 'a fresh burst would be 200 lines').toBeLessThan(200);
    await expectContained({ hostile: p, neighbour, base, cause: /^killed: ran \d+ ms/, minEnds: KILLS });
  }, 60_000);

  it("keeps `wasmux run`'s stderr within the rate (bytes and lines) and its RSS bounded, beside a working echo plugin", async () => {
    const wasm = await plugin();
    const { calls, seconds, mine, bytes, allBytes, rss0, rssMax, echoes, slowestMs, echoProblems } = await floodThroughCli(wasm);
    const denials = mine.filter((l) => / warn: denied: /.test(l)).length;
    const suppressed = totalSuppressed(mine.map((l) => l.replace(/^\S+ warn: /, '')));
    const budget = logBudget(seconds, 1);
    console.log(
      `wasmux run, log-flood-denials: ${calls} denied calls; the plugin's stderr: ${mine.length} lines, ${bytes} bytes ` +
        `(budget ${budget} lines x ${MAX_LINE_BYTES} bytes = ${budget * MAX_LINE_BYTES}); all stderr ${allBytes} bytes; ` +
        `RSS ${rss0.toFixed(0)} -> at most ${rssMax.toFixed(0)} MiB; ${echoes} echoes meanwhile, slowest ${slowestMs.toFixed(0)} ms`,
    );

    expect(calls).toBeGreaterThan(10 * budget);
    expect(denials + suppressed.denials).toBe(calls);
    expect(mine.length).toBeLessThanOrEqual(budget);
    for (const l of mine) expect(Buffer.byteLength(l)).toBeLessThanOrEqual(MAX_LINE_BYTES);
    expect(bytes).toBeLessThanOrEqual(budget * MAX_LINE_BYTES);
    // Everything else on stderr: echo's and the host's few lines (start, stop, counters).
    expect(allBytes - bytes).toBeLessThan(4096);
    expect(rssMax - rss0).toBeLessThan(200);
    expect(echoes).toBeGreaterThan(5);
    expect(slowestMs).toBeLessThan(2000);
    expect(echoProblems).toEqual([]);
  }, 60_000);
});
