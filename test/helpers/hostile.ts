/**
 * Helpers for the hostile-plugin and network-abuse suites (test/hostile/,
 * test/abuse/): a plugin hosted in this process with a log collector that
 * stamps every line, a well-behaved echo "neighbour" served beside it that
 * keeps proving it works while the hostile one misbehaves, log-line counts,
 * and `wasmux run` with several plugins as a child process.
 *
 * Every wait is bounded; everything started here is stopped by
 * `cleanUp()` (call it in afterEach) even when a test fails midway.
 */
import type net from 'node:net';
import { expect } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { readdirSync, readlinkSync } from 'node:fs';
import { serve, type LogEntry, type PluginServer, type ServeOptions } from '../../dist/host/index.js';
import { ECHO_WASM, HOST, connect, destroyClients, exchange, openFds, sleep, waitFor, warmUpLibuv, withTimeout } from './server.js';
import { CLI, ROOT } from './cli.js';
import { BACKEND_UNDER_TEST, assertBackend } from './backend-under-test.js';

export { ECHO_WASM, HOST };

/** dist/test-plugins/<name>.wasm */
export function testPlugin(name: string): string {
  return fileURLToPath(new URL(`../../dist/test-plugins/${name}.wasm`, import.meta.url));
}

/** A log line with when this process received it (monotonic: hrtime ns and performance.now()). */
export interface Stamped extends LogEntry {
  ns: bigint;
  at: number;
}

export interface Hosted {
  server: PluginServer;
  logs: Stamped[];
  /** The port of the first listen address. */
  port: number;
  /** Lines whose message matches `re`. */
  lines(re: RegExp): Stamped[];
  count(re: RegExp): number;
  /** Resolves with the `n`th line (1-based) matching `re`, once there is one; rejects after `timeoutMs`. */
  line(re: RegExp, n?: number, timeoutMs?: number): Promise<Stamped>;
  stop(): Promise<void>;
}

const started: Hosted[] = [];
const children = new Set<ChildProcess>();

/**
 * Serves `plugin` in this process on 127.0.0.1:0 with a collecting logger.
 * Waits for `ready` unless `waitReady` is false (a plugin that never
 * becomes ready); a rejected `ready` is then the caller's to observe.
 */
export async function host(
  plugin: string,
  opts: Partial<Omit<ServeOptions, 'plugin' | 'logger'>> & { waitReady?: boolean } = {},
): Promise<Hosted> {
  const { waitReady = true, ...rest } = opts;
  const logs: Stamped[] = [];
  // Hostile tests run several plugin servers in this process: a table of
  // 1,024 connections each (not the default 16,384) keeps them within its
  // open-file limit, which the host would otherwise warn about.
  const policy = Array.isArray(rest.policy) ? rest.policy : { maxConnections: 1024, ...rest.policy };
  const server = await serve({
    plugin,
    listen: [`${HOST}:0`],
    backend: BACKEND_UNDER_TEST,
    ...rest,
    policy,
    logger: (e) => logs.push({ ...e, ns: process.hrtime.bigint(), at: performance.now() }),
  });
  assertBackend(server.backend);
  const lines = (re: RegExp) => logs.filter((l) => re.test(l.message));
  const h: Hosted = {
    server,
    logs,
    port: server.addresses[0]?.port ?? 0,
    lines,
    count: (re) => lines(re).length,
    async line(re, n = 1, timeoutMs = 10_000) {
      const ok = await waitFor(() => lines(re).length >= n, timeoutMs, 2);
      if (!ok) throw new Error(`no ${n}th log line matching ${re} within ${timeoutMs} ms; log:\n${dump(logs)}`);
      return lines(re)[n - 1]!;
    },
    stop: () => server.stop(),
  };
  started.push(h);
  if (waitReady) await withTimeout(server.ready, 15_000, `${plugin} ready`);
  return h;
}

/** The log as text, for failure messages. */
export function dump(logs: readonly LogEntry[]): string {
  return logs.map((l) => `  ${l.source}[${l.instance ?? '-'}] ${l.origin === 'guest' ? 'guest ' : ''}${l.level}: ${l.message}`).join('\n');
}

/** Milliseconds between a guest's "looping since <ns>" line and a later moment (hrtime ns). */
export function msSinceLoop(loopLine: Stamped, ns: bigint): number {
  const m = /looping since (\d+)/.exec(loopLine.message);
  if (!m) throw new Error(`not a loop line: ${loopLine.message}`);
  return Number(ns - BigInt(m[1]!)) / 1e6;
}

/** Wall time a test allows between a loop's start and its kill, past the budget: a guard against a watchdog that never fires. */
export const KILL_WALL_GUARD_MS = 3000;

/**
 * The watchdog's timing, as a test can hold it on a shared machine. The kill
 * message says how long the guest ran by the watchdog's clock: its thread's
 * CPU time where the OS has one ("of CPU"), wall time elsewhere. That is past
 * the budget and within 100 ms of it. In wall time from the loop's start
 * (`wallMs`) the kill never comes before the budget; on a quiet machine it
 * comes within budget + 100 ms too, but on two cores the neighbour's thread,
 * this process and anything else running take CPU from the looping thread,
 * and a CPU budget is not charged for that wait: here the wall-time bound is
 * only a guard against a kill that never comes.
 */
export function expectKilledOnTime(message: string, wallMs: number, budget: number): void {
  const m = /killed: ran (\d+) ms( of CPU)? without returning to poll\.wait/.exec(message);
  if (!m) throw new Error(`not a kill line: ${message}`);
  const ran = Number(m[1]);
  expect(ran, message).toBeGreaterThanOrEqual(budget);
  expect(ran, message).toBeLessThan(budget + 100);
  expect(wallMs, message).toBeGreaterThanOrEqual(budget);
  expect(wallMs, message).toBeLessThan(m[2] ? budget + KILL_WALL_GUARD_MS : budget + 100);
}

/**
 * A well-behaved echo plugin served in this process beside a hostile one.
 * From start() until stop() it does a round trip every ~10 ms with a unique
 * payload, on a connection it keeps and, every 10th round, on a fresh one:
 * any wrong echo, error or round trip over `slowMs` is recorded.
 */
export class Neighbour {
  ok = 0;
  readonly failures: string[] = [];
  maxMs = 0;
  private running = true;
  private loop: Promise<void> = Promise.resolve();

  private constructor(
    readonly echo: Hosted,
    private readonly slowMs: number,
  ) {}

  static async start(slowMs = 2000): Promise<Neighbour> {
    const n = new Neighbour(await host(ECHO_WASM), slowMs);
    n.loop = n.probe();
    return n;
  }

  get port(): number {
    return this.echo.port;
  }

  private async probe(): Promise<void> {
    let sock: net.Socket | null = null;
    for (let round = 0; this.running; round++) {
      const t = performance.now();
      try {
        if (sock === null || round % 10 === 0) {
          sock?.destroy();
          sock = await connect(this.port, { timeoutMs: 5000 });
        }
        const msg = randomBytes(16 + (round % 1024));
        msg.writeUInt32BE(round, 0);
        const echoed = await exchange(sock, msg, 5000);
        if (!echoed.equals(msg)) throw new Error('wrong echo');
        this.ok++;
      } catch (e) {
        this.failures.push(`round ${round}: ${(e as Error).message}`);
        sock?.destroy();
        sock = null;
      }
      const ms = performance.now() - t;
      this.maxMs = Math.max(this.maxMs, ms);
      if (ms > this.slowMs) this.failures.push(`round ${round}: ${ms.toFixed(0)} ms`);
      await sleep(10);
    }
    sock?.destroy();
  }

  /**
   * Stops probing, then proves the echo still works "after" with a fresh
   * connection and 256 KiB, and that it logged no warning or error.
   * Returns the number of good round trips while probing.
   */
  async finish(): Promise<number> {
    // A fast hostile test can end before the prober has gone round a few
    // times: let it reach a handful of round trips first (bounded).
    await waitFor(() => this.ok > 5 || this.failures.length > 0, 5000);
    this.running = false;
    await withTimeout(this.loop, 10_000, 'neighbour prober');
    const sock = await connect(this.port);
    const msg = randomBytes(256 * 1024);
    const echoed = await exchange(sock, msg, 10_000);
    sock.destroy();
    if (!echoed.equals(msg)) this.failures.push('after: wrong echo of 256 KiB');
    const bad = this.echo.logs.filter((l) => l.level === 'warn' || l.level === 'error');
    if (bad.length > 0) this.failures.push(`echo logged problems:\n${dump(bad)}`);
    if (this.echo.server.exitReasons().some((r) => r !== null)) this.failures.push(`echo ended: ${this.echo.server.exitReasons()}`);
    return this.ok;
  }
}

/** What each descriptor of this process is (its /proc/self/fd link), by number. */
function fdTable(): Map<number, string> {
  const table = new Map<number, string>();
  for (const f of readdirSync('/proc/self/fd')) {
    let target = '?';
    try {
      target = readlinkSync(`/proc/self/fd/${f}`);
    } catch {
      // gone meanwhile (readdir's own directory handle, for one)
    }
    table.set(Number(f), target);
  }
  return table;
}

// The table at the last baseline, to say which descriptors differ when a count does not come back.
let baselineTable = new Map<number, string>();

/** Takes the descriptor baseline of this process (after libuv's one-time spare fd). */
export async function fdBaseline(): Promise<number> {
  await warmUpLibuv();
  baselineTable = fdTable();
  return openFds();
}

/**
 * Waits (bounded) for the descriptor count to come back to `baseline`;
 * returns the last count. When it does not, writes which descriptors
 * appeared or went away since the baseline (to stderr, beside the failure).
 */
export async function settleFds(baseline: number, timeoutMs = 10_000): Promise<number> {
  await waitFor(() => openFds() === baseline, timeoutMs, 20);
  const n = openFds();
  if (n !== baseline) {
    const now = fdTable();
    const gone = [...baselineTable].filter(([fd, t]) => now.get(fd) !== t).map(([fd, t]) => `${fd} ${t}`);
    const added = [...now].filter(([fd, t]) => baselineTable.get(fd) !== t).map(([fd, t]) => `${fd} ${t}`);
    console.error(`descriptors: ${baseline} at the baseline, ${n} now; gone: [${gone.join(', ')}]; new: [${added.join(', ')}]`);
  }
  return n;
}

export function rssMiB(): number {
  return process.memoryUsage().rss / 1048576;
}

/** Stops every server started through host() and every child process, destroys client sockets. */
export async function cleanUp(): Promise<void> {
  destroyClients();
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  await Promise.all(started.splice(0).map((h) => withTimeout(h.server.stop(), 10_000, 'stop()')));
}

/**
 * Resolves once the server at `port` closes or resets `sock` (end, close
 * or error), with how long that took; rejects after `timeoutMs`.
 */
export function endOf(sock: net.Socket, timeoutMs = 5000): Promise<number> {
  const t = performance.now();
  return withTimeout(
    new Promise<number>((resolve) => {
      if (sock.destroyed) return resolve(0);
      const done = () => resolve(performance.now() - t);
      sock.once('end', done);
      sock.once('close', done);
      sock.once('error', done);
      sock.resume();
    }),
    timeoutMs,
    'connection end',
  );
}

/** Reads `sock` until `re` matches what arrived (as text); returns the text. */
export function readUntil(sock: net.Socket, re: RegExp, timeoutMs = 5000): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (d: Buffer) => {
        text += d.toString('latin1');
        if (re.test(text)) {
          sock.off('data', onData);
          sock.off('close', onClose);
          sock.pause();
          resolve(text);
        }
      };
      const onClose = () => reject(new Error(`closed before ${re}; got ${JSON.stringify(text)}`));
      sock.on('data', onData);
      sock.once('close', onClose);
      sock.resume();
    }),
    timeoutMs,
    `reading until ${re}`,
  );
}

/** Opens a connection to `port` and writes `data` once connected. */
export async function send(port: number, data: string | Uint8Array): Promise<net.Socket> {
  const sock = await connect(port);
  sock.write(data);
  return sock;
}

// ---- wasmux run with several plugins ------------------------------------------------

export interface RunLine {
  text: string;
  /** hrtime ns when this process read the line. */
  ns: bigint;
}

export interface MultiRun {
  child: ChildProcess;
  /** Port per plugin name, from the "<name> listening on <addr>" lines. */
  ports: Map<string, number>;
  stdout: RunLine[];
  stderr: RunLine[];
  /** Resolves with the `n`th stderr line (1-based) matching `re`. */
  errLine(re: RegExp, n?: number, timeoutMs?: number): Promise<RunLine>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function lines(stream: NodeJS.ReadableStream, out: RunLine[]): void {
  let rest = '';
  stream.on('data', (d: Buffer) => {
    const ns = process.hrtime.bigint();
    rest += d.toString('utf8');
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      out.push({ text: rest.slice(0, i), ns });
      rest = rest.slice(i + 1);
    }
  });
}

/** Starts `wasmux run ...args` and resolves once `plugins` "listening on" lines are printed. */
export function runPlugins(args: string[], plugins: number, timeoutMs = 15_000): Promise<MultiRun> {
  const child = spawn(process.execPath, [CLI, 'run', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const stdout: RunLine[] = [];
  const stderr: RunLine[] = [];
  lines(child.stdout!, stdout);
  lines(child.stderr!, stderr);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      r({ code, signal });
    }),
  );
  const ports = new Map<string, number>();
  const run: MultiRun = {
    child,
    ports,
    stdout,
    stderr,
    async errLine(re, n = 1, ms = 10_000) {
      const ok = await waitFor(() => stderr.filter((l) => re.test(l.text)).length >= n, ms, 2);
      if (!ok) throw new Error(`no ${n}th stderr line matching ${re} within ${ms} ms; stderr:\n${stderr.map((l) => l.text).join('\n')}`);
      return stderr.filter((l) => re.test(l.text))[n - 1]!;
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return withTimeout(exited, 10_000, 'wasmux run exit');
    },
  };
  return (async () => {
    const ok = await waitFor(
      () => {
        for (const l of stdout) {
          const m = /^wasmux: (\S+) listening on [^\s,]*:(\d+)/.exec(l.text);
          if (m) ports.set(m[1]!, Number(m[2]));
        }
        return ports.size >= plugins || child.exitCode !== null;
      },
      timeoutMs,
      10,
    );
    if (!ok || ports.size < plugins) {
      child.kill('SIGKILL');
      throw new Error(`wasmux run: ${ports.size} of ${plugins} listening lines; stderr:\n${stderr.map((l) => l.text).join('\n')}`);
    }
    return run;
  })();
}

/** Waits until `fn` stops throwing (bounded), returning its value. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 5000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (performance.now() > deadline) throw e;
      await sleep(20);
    }
  }
}

export { openFds, sleep, waitFor, withTimeout, connect, exchange };
