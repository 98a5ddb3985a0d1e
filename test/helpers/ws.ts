/**
 * Running the ws chat-room plugin (dist/plugins/ws.wasm) in this test
 * process and talking to it two ways: with the real `ws` client library,
 * and over raw sockets with hand-built frames, for what a well-behaved
 * library never sends (unmasked frames, bad opcodes, broken UTF-8).
 *
 * Every client a helper opens is tracked; `closeWsClients()` in an
 * afterEach/afterAll leaves nothing behind even when a test fails midway.
 */
import type net from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { serve, type LogEntry, type PluginServer, type ServeOptions } from '../../dist/host/index.js';
import { HOST, connect, destroyClients, withTimeout } from './server.js';
import { BACKEND_UNDER_TEST, assertBackend } from './backend-under-test.js';

export { WebSocket };

export const WS_WASM = fileURLToPath(new URL('../../dist/plugins/ws.wasm', import.meta.url));

export interface WsServer {
  server: PluginServer;
  port: number;
  url: string;
  logs: LogEntry[];
  stop(): Promise<void>;
}

/** Starts dist/plugins/ws.wasm on 127.0.0.1:0 (config: the plugin's limits) and waits until it listens. */
export async function startWs(opts: Partial<Omit<ServeOptions, 'plugin' | 'logger'>> = {}): Promise<WsServer> {
  const logs: LogEntry[] = [];
  const server = await serve({
    plugin: WS_WASM,
    listen: [`${HOST}:0`],
    workers: 1,
    backend: BACKEND_UNDER_TEST,
    ...opts,
    logger: (e) => logs.push(e),
  });
  assertBackend(server.backend);
  try {
    await withTimeout(server.ready, 15_000, 'ws server ready');
  } catch (e) {
    await server.stop();
    throw e;
  }
  const port = server.addresses[0]!.port;
  return { server, port, url: `ws://${HOST}:${port}/`, logs, stop: () => server.stop() };
}

// ---- ws library clients -------------------------------------------------------

const wsClients = new Set<WebSocket>();

/** Terminates every ws client and raw socket the helpers opened. */
export function closeWsClients(): void {
  for (const w of wsClients) w.terminate();
  wsClients.clear();
  destroyClients();
}

/** A `ws` client that has completed its handshake. */
export async function openClient(url: string, timeoutMs = 10_000): Promise<WebSocket> {
  const w = new WebSocket(url, { perMessageDeflate: false });
  wsClients.add(w);
  w.on('close', () => wsClients.delete(w));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      w.once('open', () => resolve());
      w.once('error', reject);
    }),
    timeoutMs,
    'ws open',
  );
  w.on('error', () => {}); // later errors show as a close; a test checks the code
  return w;
}

export interface Received {
  data: Buffer;
  binary: boolean;
}

/** Collects messages from `w` from now on, into the returned array. */
export function record(w: WebSocket): Received[] {
  const got: Received[] = [];
  w.on('message', (data: Buffer, binary: boolean) => got.push({ data, binary }));
  return got;
}

/** Resolves with the next `n` messages `w` receives. */
export function nextMessages(w: WebSocket, n: number, timeoutMs = 10_000): Promise<Received[]> {
  const got: Received[] = [];
  return withTimeout(
    new Promise<Received[]>((resolve) => {
      const on = (data: Buffer, binary: boolean) => {
        got.push({ data, binary });
        if (got.length === n) {
          w.off('message', on);
          resolve(got);
        }
      };
      w.on('message', on);
    }),
    timeoutMs,
    `${n} messages (got ${got.length})`,
  );
}

/** Resolves with the code and reason `w` closes with. */
export function closedWith(w: WebSocket, timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
  if (w.readyState === WebSocket.CLOSED) return Promise.reject(new Error('already closed'));
  return withTimeout(
    new Promise((resolve) => {
      w.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
    }),
    timeoutMs,
    'ws close',
  );
}

// ---- raw sockets --------------------------------------------------------------

/** A client upgrade request; `headers` replace or add to the usual ones (null removes one). */
export function upgradeRequest(headers: Record<string, string | null> = {}, requestLine = 'GET /chat HTTP/1.1'): string {
  const all: Record<string, string | null> = {
    Host: `${HOST}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const lines = Object.entries(all)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k}: ${v}`);
  return `${requestLine}\r\n${lines.join('\r\n')}\r\n\r\n`;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Whether the server closed the connection after answering. */
  ended: boolean;
}

/** Sends raw request bytes and reads until the server ends the connection. */
export async function rawHttp(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<HttpAnswer> {
  const sock = await connect(port);
  const chunks: Buffer[] = [];
  const ended = withTimeout(
    new Promise<void>((resolve) => {
      sock.on('data', (d: Buffer) => chunks.push(d));
      sock.once('end', () => resolve());
      sock.once('close', () => resolve());
    }),
    timeoutMs,
    'server ending the connection',
  );
  sock.write(request);
  await ended;
  sock.destroy();
  return parseHttp(Buffer.concat(chunks), true);
}

function parseHttp(raw: Buffer, ended: boolean): HttpAnswer {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no HTTP response head in ${JSON.stringify(text)}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(statusLine!);
  if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const c = l.indexOf(':');
    headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  return { status: Number(m[1]), headers, body: text.slice(end + 4), ended };
}

/** A raw socket that has completed the upgrade; `frames` reads what the server sends after it. */
export interface RawWs {
  sock: net.Socket;
  frames: FrameReader;
}

/** Connects a raw socket and upgrades it (the server's 101 is checked and consumed). */
export async function rawUpgrade(port: number, opts: { paused?: boolean; allowHalfOpen?: boolean } = {}): Promise<RawWs> {
  const sock = await connect(port, { allowHalfOpen: opts.allowHalfOpen ?? false });
  const frames = new FrameReader(sock);
  sock.write(upgradeRequest());
  const head = await frames.readHttpHead();
  if (!head.startsWith('HTTP/1.1 101 ')) throw new Error(`upgrade refused: ${head}`);
  if (opts.paused) frames.pause();
  return { sock, frames };
}

export interface FrameOptions {
  fin?: boolean;
  /** Mask the frame as a client must (default true). */
  mask?: boolean;
  /** RSV1..3 as a 3-bit number (default 0). */
  rsv?: number;
  /** Claim this payload length in the header instead of the real one. */
  declaredLength?: bigint | number;
}

/** A client frame, built by hand. */
export function frame(opcode: number, payload: Buffer | string = Buffer.alloc(0), opts: FrameOptions = {}): Buffer {
  const { fin = true, mask = true, rsv = 0 } = opts;
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const len = BigInt(opts.declaredLength ?? data.length);
  let head: Buffer;
  if (len < 126n) {
    head = Buffer.from([0, Number(len)]);
  } else if (len <= 0xffffn) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(Number(len), 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(len, 2);
  }
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!mask) return Buffer.concat([head, data]);
  head[1]! |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.from(data);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= key[i & 3]!;
  return Buffer.concat([head, key, masked]);
}

/** A close frame's payload: the code, then the reason. */
export function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const r = typeof reason === 'string' ? Buffer.from(reason, 'utf8') : reason;
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/**
 * Reads a raw socket: first an HTTP response head, then server frames.
 * Keeps every byte it has seen, so nothing is lost between calls.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: (() => void) | null = null;
  /** The server ended or reset the connection. */
  ended = false;
  /** Bytes received in all. */
  received = 0;

  constructor(readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.received += d.length;
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.wake();
    });
    const end = () => {
      this.ended = true;
      this.wake();
    };
    sock.on('end', end);
    sock.on('close', end);
  }

  pause(): void {
    this.sock.pause();
  }
  resume(): void {
    this.sock.resume();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  private async until<T>(take: () => T | null, what: string, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = take();
      if (v !== null) return v;
      if (this.ended) throw new Error(`connection ended before ${what} (${this.buf.length} bytes unread)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** The HTTP response head (without the blank line). */
  readHttpHead(timeoutMs = 10_000): Promise<string> {
    return this.until(
      () => {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return null;
        const head = this.buf.subarray(0, end).toString('latin1');
        this.buf = this.buf.subarray(end + 4);
        return head;
      },
      'HTTP response head',
      timeoutMs,
    );
  }

  /** The next frame the server sends. */
  next(timeoutMs = 10_000): Promise<ServerFrame> {
    return this.until(
      () => {
        const b = this.buf;
        if (b.length < 2) return null;
        let len = b[1]! & 0x7f;
        let off = 2;
        if (len === 126) {
          if (b.length < 4) return null;
          len = b.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (b.length < 10) return null;
          len = Number(b.readBigUInt64BE(2));
          off = 10;
        }
        const masked = (b[1]! & 0x80) !== 0;
        if (masked) off += 4;
        if (b.length < off + len) return null;
        const f = {
          fin: (b[0]! & 0x80) !== 0,
          rsv: (b[0]! >> 4) & 7,
          opcode: b[0]! & 0x0f,
          masked,
          payload: Buffer.from(b.subarray(off, off + len)),
        };
        this.buf = b.subarray(off + len);
        return f;
      },
      'frame',
      timeoutMs,
    );
  }

  /** Skips data frames until a close frame; returns its code (0: none) and reason. */
  async closeFrame(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.next(Math.max(1, deadline - Date.now()));
      if (f.opcode !== 8) continue;
      return f.payload.length >= 2
        ? { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString('utf8') }
        : { code: 0, reason: '' };
    }
  }

  /** Resolves once the server has ended the connection (reading and dropping anything else). */
  async end(timeoutMs = 10_000): Promise<void> {
    this.resume();
    await this.until(() => (this.ended ? true : ((this.buf = Buffer.alloc(0)), null)), 'end of connection', timeoutMs).catch((e: Error) => {
      if (!this.ended) throw e;
    });
  }
}
