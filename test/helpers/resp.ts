/**
 * Talking RESP to dist/plugins/resp.wasm: the server started in this test
 * process (its instance is a worker thread), redis-cli and redis-benchmark
 * as real clients, a raw socket client for what redis-cli will not send
 * (inline commands, pipelines, requests split at chosen bytes, malformed
 * input), and a real redis-server to compare replies with.
 *
 * Everything is bounded in time: child processes are killed after their
 * timeout, every raw read has a deadline, raw sockets are tracked by
 * helpers/server.ts (`destroyClients()` in afterEach), and a redis-server
 * started here is stopped by its pid in afterAll (`stopRedisServer`).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve, type LogEntry, type PluginServer, type ServeOptions } from '../../dist/host/index.js';
import { connect, withTimeout, sleep, HOST } from './server.js';
import { BACKEND_UNDER_TEST, assertBackend } from './backend-under-test.js';

export const RESP_WASM = fileURLToPath(new URL('../../dist/plugins/resp.wasm', import.meta.url));
export { HOST };

export interface RespServer {
  server: PluginServer;
  port: number;
  logs: LogEntry[];
  stop(): Promise<void>;
}

/** Starts the resp plugin on 127.0.0.1:0 (`config`: the plugin's --config string). */
export async function startResp(opts: Partial<Omit<ServeOptions, 'plugin' | 'logger'>> = {}): Promise<RespServer> {
  const logs: LogEntry[] = [];
  const server = await serve({
    plugin: RESP_WASM,
    listen: [`${HOST}:0`],
    workers: 1,
    backend: BACKEND_UNDER_TEST,
    ...opts,
    logger: (e) => logs.push(e),
  });
  assertBackend(server.backend);
  try {
    await withTimeout(server.ready, 15_000, 'resp server ready');
  } catch (e) {
    await server.stop();
    throw e;
  }
  return { server, port: server.addresses[0]!.port, logs, stop: () => server.stop() };
}

/** The instance never ended (no trap, no restart). */
export function unharmed(resp: RespServer): boolean {
  const s = resp.server.stats()[0]!;
  return s.running && s.restarts === 0 && Object.keys(s.ends).length === 0;
}

// --- the programs ----------------------------------------------------------------

/** null when `program` is on the PATH, else why a test that needs it is skipped. */
export function missing(program: string): string | null {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' });
    return null;
  } catch {
    return `${program} is not installed (Debian: apt-get install -y ${program === 'redis-server' ? 'redis-server' : 'redis-tools'})`;
  }
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion, killed after `timeoutMs`; `input` goes to its stdin. */
export function runProgram(
  program: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20, env: opts.env ?? process.env },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: unknown; killed?: boolean }) | null;
        if (e && (e.killed || typeof e.code !== 'number')) {
          reject(new Error(`${program} ${args.join(' ')}: ${e.killed ? `killed after ${timeoutMs} ms` : e.message}`));
          return;
        }
        resolve({ code: e ? (e.code as number) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/**
 * `redis-cli -h 127.0.0.1 -p port [--no-raw] args...`: one command, its
 * arguments passed as argv (no shell, no quoting). --no-raw asks for the
 * formatted output a terminal gets ((integer) 1, "value", (nil), (error) ...);
 * without it, output to a pipe is raw.
 */
export async function cli(port: number, args: string[], opts: { raw?: boolean } = {}): Promise<string> {
  const r = await runProgram('redis-cli', ['-h', HOST, '-p', String(port), ...(opts.raw ? [] : ['--no-raw']), ...args]);
  if (r.code !== 0) throw new Error(`redis-cli ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

// --- RESP on a raw socket --------------------------------------------------------

/** A request as a client library sends it: a multibulk array of bulk strings. */
export function command(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Where the complete RESP2 reply starting at `at` ends, or -1 if it has not all arrived. */
export function replyEnd(buf: Buffer, at = 0): number {
  if (at >= buf.length) return -1;
  const cr = buf.indexOf('\r\n', at);
  if (cr < 0) return -1;
  const type = String.fromCharCode(buf[at]!);
  const n = Number(buf.subarray(at + 1, cr).toString('latin1'));
  switch (type) {
    case '+':
    case '-':
    case ':':
      return cr + 2;
    case '$':
      if (n < 0) return cr + 2;
      return buf.length >= cr + 2 + n + 2 ? cr + 2 + n + 2 : -1;
    case '*': {
      let p = cr + 2;
      for (let i = 0; i < n; i++) {
        p = replyEnd(buf, p);
        if (p < 0) return -1;
      }
      return p;
    }
    default:
      throw new Error(`not a RESP reply at byte ${at}: ${JSON.stringify(buf.subarray(at, at + 40).toString('latin1'))}`);
  }
}

/**
 * One connection, bytes in and out as the test decides. `replies(n)` takes
 * the next n complete replies (each as its raw text, "+OK\r\n"); `closed()`
 * waits for the server to end the connection.
 */
export class RespClient {
  received = Buffer.alloc(0);
  ended = false;
  private waiters = new Set<() => void>();

  private constructor(readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    sock.on('end', end);
    sock.on('close', end);
    sock.on('error', end);
  }

  static async open(port: number): Promise<RespClient> {
    return new RespClient(await connect(port, { allowHalfOpen: true }));
  }

  send(data: string | Buffer): void {
    this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Waits until `cond()` holds (true) or the deadline passes (false). */
  private async until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.waiters.delete(done);
          resolve();
        }, left);
        const done = () => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        this.waiters.add(done);
      });
    }
    return true;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** The next `n` replies, as raw text; fails after `timeoutMs` or if the connection ends first. */
  async replies(n: number, timeoutMs = 10_000): Promise<string[]> {
    const out: string[] = [];
    const ok = await this.until(() => {
      while (out.length < n) {
        const end = replyEnd(this.received);
        if (end < 0) return this.ended;
        out.push(this.received.subarray(0, end).toString('latin1'));
        this.received = this.received.subarray(end);
      }
      return true;
    }, timeoutMs);
    if (!ok || out.length < n) {
      throw new Error(
        `got ${out.length} of ${n} replies (${this.ended ? 'connection ended' : `${timeoutMs} ms passed`}); ` +
          `pending bytes: ${JSON.stringify(this.received.toString('latin1').slice(0, 200))}`,
      );
    }
    return out;
  }

  async reply(timeoutMs = 10_000): Promise<string> {
    return (await this.replies(1, timeoutMs))[0]!;
  }

  /** Waits for the server to end the connection; returns whether it did within `timeoutMs`. */
  closed(timeoutMs = 5_000): Promise<boolean> {
    return this.until(() => this.ended, timeoutMs);
  }

  /** Nothing more arrives for `ms` (for "no reply" checks). */
  async quiet(ms: number): Promise<boolean> {
    const before = this.received.length;
    await sleep(ms);
    return this.received.length === before;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

/** Opens a connection, sends `data`, returns `n` replies, closes. */
export async function exchange(port: number, data: string | Buffer, n: number): Promise<string[]> {
  const c = await RespClient.open(port);
  try {
    c.send(data);
    return await c.replies(n);
  } finally {
    c.destroy();
  }
}

// --- a real redis-server, for comparison -------------------------------------------

export interface RedisServer {
  port: number;
  child: ChildProcess;
  dir: string;
}

const redisServers = new Set<RedisServer>();

/** A free loopback port (bound and released; the caller binds it next). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, HOST, () => resolve());
  });
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/**
 * Starts Debian's redis-server on 127.0.0.1 (a free port, a temporary
 * directory, no persistence) and waits until it answers PING.
 */
export async function startRedisServer(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'wasmux-redis-'));
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
    { stdio: 'ignore' },
  );
  const r: RedisServer = { port, child, dir };
  redisServers.add(r);
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const [pong] = await exchange(port, 'PING\r\n', 1);
      if (pong === '+PONG\r\n') return r;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      await stopRedisServer(r);
      throw new Error(`redis-server on port ${port} did not answer PING within 10 s`);
    }
    await sleep(50);
  }
}

/** Stops a redis-server started here (by its pid) and removes its directory. */
export async function stopRedisServer(r: RedisServer): Promise<void> {
  redisServers.delete(r);
  if (r.child.exitCode === null && r.child.signalCode === null) {
    const exited = new Promise<void>((resolve) => r.child.once('exit', () => resolve()));
    r.child.kill('SIGTERM');
    await withTimeout(exited, 5_000, 'redis-server exit').catch(() => r.child.kill('SIGKILL'));
  }
  rmSync(r.dir, { recursive: true, force: true });
}
