/**
 * For the log-flood suites (test/hostile/log-flood-*.test.ts): a hostile WAT
 * plugin that makes calls which each want a log line, as fast as it can,
 * and counts them; and the parsing of the host's summaries of the lines it
 * suppressed (sandbox/log-limiter.ts).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { runPlugins } from './hostile.js';
import { IMPORTS, listenThen, runtime } from './wat.js';
import { echoRoundTrip, sleep, withTimeout } from './server.js';

/** How long the plugin floods (seconds). */
export const FLOOD_SECONDS = 3;
/** Where the plugin's end-of-flood line starts (after this much quiet, the host has summarized everything). */
const QUIET_MS = 1500;
/** The plugin's last line: how many calls it made. */
export const CALLS_MADE = /^(\d+) calls made$/;

/**
 * A plugin that listens on ctx.listen[0] (it becomes ready), then runs
 * `calls` (WAT instructions making `perIteration` host calls) in a tight
 * loop for FLOOD_SECONDS, with a wait(timeout 0) every 2048 iterations so
 * the watchdog never fires; then goes quiet for QUIET_MS (the host writes
 * its pending summary meanwhile), logs "<n> calls made" and waits forever.
 * `fields`: more module fields (data segments the calls use, at 8192 and above).
 */
export function floodModule(calls: string, perIteration: number, fields = ''): string {
  return `(module
  ${IMPORTS}
  ${runtime()}
  ${fields}
  (global $calls (mut i64) (i64.const 0))
  (data (i32.const 4096) " calls made")
  (func $flood
    (local $i i32) (local $start i64) (local $n i64) (local $p i32)
    (local.set $start (call $now))
    (block $done
      (loop $again
        ${calls}
        (global.set $calls (i64.add (global.get $calls) (i64.const ${perIteration})))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.and (local.get $i) (i32.const 2047)))
          (then
            (call $wait (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 2048))
            (br_if $done (i64.ge_u (i64.sub (call $now) (local.get $start)) (i64.const ${FLOOD_SECONDS * 1_000_000_000})))))
        (br $again)))
    (call $wait (i32.const 16) (i32.const 1) (i32.const ${QUIET_MS}) (i32.const 2048))
    ;; the count in decimal, right before " calls made"
    (local.set $n (global.get $calls))
    (local.set $p (i32.const 4096))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p) (i64.add (i64.const 48) (i64.rem_u (local.get $n) (i64.const 10))))
      (local.set $n (i64.div_u (local.get $n) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $n) (i64.const 0))))
    (call $log (i32.const 2) (local.get $p) (i32.sub (i32.const ${4096 + ' calls made'.length}) (local.get $p)))
    (loop $forever (call $wait (i32.const 16) (i32.const 1) (i32.const 50) (i32.const 2048)) (br $forever)))
  ${listenThen('(call $flood)', { loop: false })}
)`;
}

/** What one summary line says: suppressed lines per kind, over how long. */
export interface Suppressed {
  guest: number;
  denials: number;
  osErrors: number;
  other: number;
  seconds: number;
}

const SUMMARY = /^suppressed (.+) in the last (\d+\.\d) s \(log limit: 100 lines\/s after a burst of 200\)$/;
const KIND: Record<string, keyof Omit<Suppressed, 'seconds'>> = {
  'guest log line': 'guest',
  'guest log lines': 'guest',
  denial: 'denials',
  denials: 'denials',
  'OS error': 'osErrors',
  'OS errors': 'osErrors',
  'other line': 'other',
  'other lines': 'other',
};

/** A summary line's counts, or null when `message` is not one. Throws on a summary it cannot read. */
export function parseSummary(message: string): Suppressed | null {
  const m = SUMMARY.exec(message);
  if (!m) return null;
  const out: Suppressed = { guest: 0, denials: 0, osErrors: 0, other: 0, seconds: Number(m[2]) };
  const items = m[1]!.split(/, | and /);
  for (const item of items) {
    const c = /^(\d{1,3}(?:,\d{3})*) (.+)$/.exec(item);
    const kind = c && KIND[c[2]!];
    if (!c || !kind) throw new Error(`unreadable summary item "${item}" in: ${message}`);
    out[kind] += Number(c[1]!.replace(/,/g, ''));
  }
  return out;
}

/** The counts of every summary among `messages`, added up, and how many summaries there were. */
export function totalSuppressed(messages: readonly string[]): Suppressed & { summaries: number } {
  const sum = { guest: 0, denials: 0, osErrors: 0, other: 0, seconds: 0, summaries: 0 };
  for (const text of messages) {
    const s = parseSummary(text);
    if (!s) continue;
    sum.summaries++;
    sum.guest += s.guest;
    sum.denials += s.denials;
    sum.osErrors += s.osErrors;
    sum.other += s.other;
    sum.seconds += s.seconds;
  }
  return sum;
}

/** Resident set size of process `pid` in MiB (Linux /proc). */
export function rssOfMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) / 1024;
}

/**
 * Echo round trips to `port` every 20 ms (a fresh connection each) until
 * `stop()`, which resolves with how many there were and the slowest;
 * rejects if one went wrong.
 */
export function keepEchoing(port: number): { stop(): Promise<{ echoes: number; slowestMs: number }> } {
  let going = true;
  let echoes = 0;
  let slowestMs = 0;
  const loop = (async () => {
    for (let i = 0; going; i++) {
      const t = performance.now();
      const msg = Buffer.from(`echo ${i}\n`);
      const got = await echoRoundTrip(port, msg, 5000);
      if (!got.equals(msg)) throw new Error(`echo ${i}: got ${JSON.stringify(got.toString())}`);
      slowestMs = Math.max(slowestMs, performance.now() - t);
      echoes++;
      await sleep(20);
    }
  })();
  return {
    async stop() {
      going = false;
      await withTimeout(loop, 10_000, 'echo client');
      return { echoes, slowestMs };
    },
  };
}

/** Longest line a flooding plugin may get on stderr (a denial or a summary, with its prefix). */
export const MAX_LINE_BYTES = 256;

/** What a flood through `wasmux run` left: the flooding plugin's stderr and the host's, and the neighbour's record. */
export interface CliFlood {
  /** The plugin's name, as its lines start (`<name>[0] ...`). */
  name: string;
  /** Calls the plugin says it made. */
  calls: number;
  /** From start to the plugin's last line. */
  seconds: number;
  /** The plugin's own stderr lines, and their bytes with newlines. */
  mine: string[];
  bytes: number;
  /** All stderr, bytes. */
  allBytes: number;
  /** The host process's RSS at start and at most meanwhile (MiB). */
  rss0: number;
  rssMax: number;
  /** The echo plugin beside it: round trips meanwhile, the slowest, and warn/error lines it wrote. */
  echoes: number;
  slowestMs: number;
  echoProblems: string[];
}

/**
 * Runs the flood plugin `wasm` through `wasmux run` beside the echo plugin
 * in the same host, echoing all along and sampling the host's RSS, until the
 * plugin's "calls made" line; checks echo once more after it; stops the host
 * (SIGTERM, which must exit 0).
 */
export async function floodThroughCli(wasm: string): Promise<CliFlood> {
  const name = basename(wasm, '.wasm');
  const t0 = performance.now();
  const run = await runPlugins(['dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', wasm, '--listen', '127.0.0.1:0'], 2);
  const rss0 = rssOfMiB(run.child.pid!);
  let rssMax = rss0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssOfMiB(run.child.pid!))), 50);
  const echoPort = run.ports.get('echo')!;
  const echo = keepEchoing(echoPort);
  const made = await run.errLine(new RegExp(`^${name}\\[0\\] guest info: \\d+ calls made$`), 1, (FLOOD_SECONDS + 10) * 1000);
  const { echoes, slowestMs } = await echo.stop();
  clearInterval(sampler);
  const seconds = (performance.now() - t0) / 1000;
  const after = Buffer.from('echo after the flood\n');
  if (!(await echoRoundTrip(echoPort, after, 2000)).equals(after)) throw new Error('echo after the flood: wrong bytes');
  const end = await run.stop('SIGTERM');
  if (end.code !== 0) throw new Error(`wasmux run exited ${end.code} (${end.signal}) on SIGTERM`);
  const mine = run.stderr.filter((l) => l.text.startsWith(`${name}[0] `)).map((l) => l.text);
  return {
    name,
    calls: Number(/ (\d+) calls made$/.exec(made.text)![1]),
    seconds,
    mine,
    bytes: mine.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0),
    allBytes: run.stderr.reduce((n, l) => n + Buffer.byteLength(l.text) + 1, 0),
    rss0,
    rssMax,
    echoes,
    slowestMs,
    echoProblems: run.stderr.filter((l) => /^echo\[/.test(l.text) && / (warn|error): /.test(l.text)).map((l) => l.text),
  };
}
