/**
 * Talking HTTP to dist/plugins/http.wasm: the server started in this test
 * process (its instance is a worker thread), curl as a real client, and a
 * raw socket client for what curl will not send (malformed requests,
 * pipelining, requests split at chosen bytes).
 *
 * Everything is bounded in time: curl is killed after its timeout, every
 * raw read and wait has a deadline, and every raw socket is tracked by
 * helpers/server.ts so `destroyClients()` in afterEach leaves nothing open.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type net from 'node:net';
import { serve, type LogEntry, type PluginServer, type ServeOptions } from '../../dist/host/index.js';
import { connect, withTimeout, HOST } from './server.js';
import { BACKEND_UNDER_TEST, assertBackend } from './backend-under-test.js';

export const HTTP_WASM = fileURLToPath(new URL('../../dist/plugins/http.wasm', import.meta.url));
export { HOST };

export interface HttpServer {
  server: PluginServer;
  port: number;
  /** http://127.0.0.1:PORT */
  base: string;
  logs: LogEntry[];
  stop(): Promise<void>;
}

/** Starts the http plugin (or `opts.plugin`) on 127.0.0.1:0 (config: the plugin's --config string). */
export async function startHttp(opts: Partial<Omit<ServeOptions, 'logger'>> = {}): Promise<HttpServer> {
  const logs: LogEntry[] = [];
  const server = await serve({
    plugin: HTTP_WASM,
    listen: [`${HOST}:0`],
    workers: 1,
    backend: BACKEND_UNDER_TEST,
    ...opts,
    logger: (e) => logs.push(e),
  });
  assertBackend(server.backend);
  try {
    await withTimeout(server.ready, 15_000, 'http server ready');
  } catch (e) {
    await server.stop();
    throw e;
  }
  const port = server.addresses[0]!.port;
  return { server, port, base: `http://${HOST}:${port}`, logs, stop: () => server.stop() };
}

// --- parsing responses ------------------------------------------------------

export interface HttpResponse {
  version: string;
  status: number;
  reason: string;
  /** Header lines as received, in order. */
  lines: [string, string][];
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Parses one response at the front of `buf` (Content-Length framing, which
 * is all this server sends). `headOnly`: the response to a HEAD request
 * (no body whatever Content-Length says). Returns null while incomplete.
 */
export function parseResponse(buf: Buffer, headOnly = false): { response: HttpResponse; size: number } | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^(HTTP\/\d\.\d) (\d{3}) (.*)$/.exec(head[0]!);
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(head[0])}`);
  const lines: [string, string][] = [];
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed response header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    lines.push([name, value]);
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  const status = Number(m[2]);
  const bodyless = headOnly || (status >= 100 && status < 200) || status === 204 || status === 304;
  const length = bodyless ? 0 : Number(headers['content-length'] ?? NaN);
  if (!Number.isInteger(length)) throw new Error(`response without a usable Content-Length: ${head.join(' | ')}`);
  const start = end + 4;
  if (buf.length < start + length) return null;
  return {
    response: { version: m[1]!, status, reason: m[3]!, lines, headers, body: buf.subarray(start, start + length) },
    size: start + length,
  };
}

/** Splits `buf` into complete responses; `heads[i]` says whether response i answers a HEAD. */
export function parseResponses(buf: Buffer, heads: boolean[] = []): { responses: HttpResponse[]; rest: Buffer } {
  const responses: HttpResponse[] = [];
  let rest = buf;
  for (;;) {
    const r = parseResponse(rest, heads[responses.length] ?? false);
    if (!r) break;
    responses.push(r.response);
    rest = rest.subarray(r.size);
  }
  return { responses, rest };
}

// --- curl -----------------------------------------------------------------

export interface CurlRun {
  /** curl's exit status (0: success; 52: empty reply, 56: receive error, ...). */
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs curl with `args` (always -sS: quiet, errors shown), killed after `timeoutMs`. */
export function curlRun(args: string[], timeoutMs = 15_000): Promise<CurlRun> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-sS', ...args],
      { encoding: 'buffer', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        // On a non-zero exit, execFile's error carries the exit status in `code` (a number);
        // a string code means curl could not be run at all.
        const e = err as (Error & { code?: unknown; killed?: boolean }) | null;
        const code = e ? e.code : 0;
        if (e && (e.killed || typeof code !== 'number')) {
          reject(new Error(`curl ${args.join(' ')}: ${e.killed ? `killed after ${timeoutMs} ms` : e.message}`));
          return;
        }
        resolve({ code: code as number, stdout, stderr: stderr.toString('utf8') });
      },
    );
  });
}

/**
 * Runs `curl -i args...` and parses every final response it printed, in
 * order (interim 100 Continue responses are left out). `heads`: which URLs
 * are HEAD requests. Fails if curl fails or prints anything else.
 */
export async function curl(
  args: string[],
  opts: { heads?: boolean[]; timeoutMs?: number } = {},
): Promise<HttpResponse[] & { stderr: string }> {
  const run = await curlRun(['-i', ...args], opts.timeoutMs);
  if (run.code !== 0) throw new Error(`curl ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  const all: HttpResponse[] = [];
  let rest = run.stdout;
  let finals = 0;
  while (rest.length > 0) {
    const r = parseResponse(rest, opts.heads?.[finals] ?? false);
    if (!r) throw new Error(`curl printed an incomplete response: ${JSON.stringify(rest.toString('latin1').slice(0, 200))}`);
    rest = rest.subarray(r.size);
    if (r.response.status >= 200) {
      all.push(r.response);
      finals++;
    }
  }
  return Object.assign(all, { stderr: run.stderr });
}

/** The one response of `curl -i args...`. */
export async function curl1(args: string[], opts: { head?: boolean; timeoutMs?: number } = {}): Promise<HttpResponse & { stderr: string }> {
  const rs = await curl(args, { heads: [opts.head ?? false], timeoutMs: opts.timeoutMs });
  if (rs.length !== 1) throw new Error(`expected one response from curl ${args.join(' ')}, got ${rs.length}`);
  return Object.assign(rs[0]!, { stderr: rs.stderr });
}

// --- a raw socket client -----------------------------------------------------

/**
 * One connection, bytes in and out as the test decides. Reads accumulate in
 * `received`; `response()` takes complete responses off its front and
 * `ended()` waits for the server's end of stream.
 */
export class RawClient {
  received = Buffer.alloc(0);
  /** The server ended its side (FIN) or the connection closed. */
  ended = false;
  /** The connection was reset or failed (an error event). */
  error: Error | null = null;
  private waiters = new Set<() => void>();

  private constructor(readonly sock: net.Socket) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    sock.on('end', () => {
      this.ended = true;
      this.wake();
    });
    sock.on('close', () => {
      this.ended = true;
      this.wake();
    });
    sock.on('error', (e) => {
      this.error = e;
      this.wake();
    });
  }

  static async open(port: number): Promise<RawClient> {
    // allowHalfOpen: after the server's FIN the client may still write (and see what happens).
    return new RawClient(await connect(port, { allowHalfOpen: true }));
  }

  send(data: string | Buffer): void {
    this.sock.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Resolves when `cond()` holds, rejects with `what` after `timeoutMs`. */
  async until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `${what}: not within ${timeoutMs} ms (received ${this.received.length} bytes: ${JSON.stringify(this.received.toString('latin1').slice(0, 300))}, ended ${this.ended})`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, left);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.waiters.add(done);
      });
    }
  }

  /** The next complete response (taken off `received`). */
  async response(opts: { head?: boolean; timeoutMs?: number } = {}): Promise<HttpResponse> {
    let parsed: ReturnType<typeof parseResponse> = null;
    await this.until(
      () => (parsed = parseResponse(this.received, opts.head ?? false)) !== null || this.ended,
      opts.timeoutMs ?? 5_000,
      'a response',
    );
    parsed ??= parseResponse(this.received, opts.head ?? false);
    if (!parsed)
      throw new Error(
        `connection ended before a complete response (received ${JSON.stringify(this.received.toString('latin1').slice(0, 300))})`,
      );
    this.received = this.received.subarray(parsed.size);
    return parsed.response;
  }

  /** Waits for the server's end of stream (FIN) or the connection closing. */
  async waitForEnd(timeoutMs = 5_000): Promise<void> {
    await this.until(() => this.ended, timeoutMs, 'the server closing the connection');
  }

  close(): void {
    this.sock.destroy();
  }

  private wake(): void {
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}

/** Counters the plugin reports at GET /stats (for the instance that answers). */
export interface PluginStats {
  instance: number;
  requests: number;
  rejected: number;
  connections: number;
  open: number;
  bytesIn: number;
  bytesOut: number;
  /** The instance's linear memory, and what its allocator has free of it (bytes). */
  memory: number;
  heapFree: number;
}

/** GET /stats on a fresh connection of its own. */
export async function pluginStats(port: number): Promise<PluginStats> {
  const c = await RawClient.open(port);
  try {
    c.send('GET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    const r = await c.response();
    return JSON.parse(r.body.toString('utf8')) as PluginStats;
  } finally {
    c.close();
  }
}

/** A minimal well-formed request (HTTP/1.1, Host set). */
export function get(path = '/', extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;
}

/**
 * GET /stats once the server has closed every other connection (open === 1,
 * the /stats connection itself), polling for up to `timeoutMs`: a client
 * that just closed may not have been noticed yet. Returns the last reading,
 * and how many /stats connections it took (`asked`).
 */
export async function settledStats(port: number, timeoutMs = 3_000): Promise<PluginStats & { asked: number }> {
  const deadline = Date.now() + timeoutMs;
  let asked = 1;
  let s = await pluginStats(port);
  while (s.open !== 1 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    s = await pluginStats(port);
    asked++;
  }
  return { ...s, asked };
}
