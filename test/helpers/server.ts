/**
 * Running the echo plugin in this test process (through the built host in
 * dist/: the instance's worker thread loads dist/host/worker/main.js) and
 * talking to it over real loopback sockets.
 *
 * Everything here is bounded in time: every wait has a deadline and every
 * client socket a helper creates is tracked, so `destroyClients()` in an
 * afterEach/afterAll leaves nothing behind even when a test fails midway.
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve, type LogEntry, type PluginServer, type ServeOptions } from '../../dist/host/index.js';
import { BACKEND_UNDER_TEST, assertBackend } from './backend-under-test.js';

export type { LogEntry, PluginServer };

export const ECHO_WASM = fileURLToPath(new URL('../../dist/plugins/echo.wasm', import.meta.url));
export const HOST = '127.0.0.1';

export interface EchoServer {
  server: PluginServer;
  port: number;
  /** Every log line of the host and the plugin, in order. */
  logs: LogEntry[];
  /** Stops the server (idempotent). */
  stop(): Promise<void>;
}

/** Log lines at warn or error: a healthy echo server writes none. */
export function problems(logs: readonly LogEntry[]): LogEntry[] {
  return logs.filter((e) => e.level === 'warn' || e.level === 'error');
}

/** Starts dist/plugins/echo.wasm on 127.0.0.1:0 and waits until every instance listens. */
export async function startEcho(opts: Partial<Omit<ServeOptions, 'plugin' | 'logger'>> = {}): Promise<EchoServer> {
  const logs: LogEntry[] = [];
  const server = await serve({
    plugin: ECHO_WASM,
    listen: [`${HOST}:0`],
    workers: 1,
    backend: BACKEND_UNDER_TEST,
    ...opts,
    logger: (e) => logs.push(e),
  });
  assertBackend(server.backend);
  try {
    await withTimeout(server.ready, 15_000, 'echo server ready');
  } catch (e) {
    await server.stop();
    throw e;
  }
  return { server, port: server.addresses[0]!.port, logs, stop: () => server.stop() };
}

/** Counters summed over every instance of `server`. */
export function totals(server: PluginServer): { accepted: number; open: number; bytesIn: number; bytesOut: number } {
  const t = { accepted: 0, open: 0, bytesIn: 0, bytesOut: 0 };
  for (const s of server.stats()) {
    t.accepted += s.accepted;
    t.open += s.open;
    t.bytesIn += s.bytesIn;
    t.bytesOut += s.bytesOut;
  }
  return t;
}

/**
 * This process's descriptors, as counted against the code under test:
 * entries in /proc/self/fd (the directory handle readdir itself holds
 * included, consistently), except files of installed packages. jco opens
 * its own wasm (js-component-bindgen-component.core.wasm) when it is
 * imported and closes it whenever the garbage collector gets to it, which
 * can be in the middle of a test; that file is the toolchain's, not a
 * descriptor wasmux opened or leaked.
 */
export function openFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target = '';
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // readdir's own handle, gone by now: counted, as always
    }
    if (!target.includes('/node_modules/')) n++;
  }
  return n;
}

/**
 * libuv opens a spare /dev/null descriptor (its EMFILE reserve) the first
 * time this process creates any TCP handle and keeps it for good. Call once
 * before taking a descriptor baseline so that one-time descriptor is not
 * counted against the code under test.
 */
export async function warmUpLibuv(): Promise<void> {
  const s = net.createServer();
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, HOST, () => resolve());
  });
  await new Promise<void>((resolve) => s.close(() => resolve()));
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every `intervalMs` until it is true; returns its last value (false at the deadline). */
export async function waitFor(cond: () => boolean, timeoutMs = 10_000, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

// Every client socket the helpers open, until it closes.
const clients = new Set<net.Socket>();

/** Destroys every client socket still open (for afterEach/afterAll). */
export function destroyClients(): number {
  const n = clients.size;
  for (const s of clients) s.destroy();
  clients.clear();
  return n;
}

/** Connects to 127.0.0.1:`port`; rejects on error or after `timeoutMs`. */
export function connect(port: number, opts: { timeoutMs?: number; allowHalfOpen?: boolean; paused?: boolean } = {}): Promise<net.Socket> {
  const { timeoutMs = 10_000, allowHalfOpen = false, paused = false } = opts;
  return new Promise((resolve, reject) => {
    const sock = new net.Socket({ allowHalfOpen });
    // Paused before connecting: Node then reads nothing from the kernel
    // until the test resumes the stream.
    if (paused) sock.pause();
    clients.add(sock);
    sock.once('close', () => clients.delete(sock));
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`connect to port ${port}: no connection within ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (e: Error) => {
      clearTimeout(timer);
      sock.destroy();
      reject(e);
    };
    sock.once('error', onError);
    sock.connect(port, HOST, () => {
      clearTimeout(timer);
      sock.off('error', onError);
      // A later error (a reset by the server) must not crash the test
      // process when no read is in progress; reads watch 'error' themselves.
      sock.on('error', () => {});
      resolve(sock);
    });
  });
}

/** Writes `data` in chunks, waiting for 'drain' whenever Node's buffer is full. */
export async function writeAll(sock: net.Socket, data: Uint8Array, chunk = 64 * 1024): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (sock.destroyed) throw new Error('socket destroyed while writing');
    const ok = sock.write(data.subarray(off, Math.min(off + chunk, data.length)));
    if (!ok) {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error) => {
          sock.off('drain', onDrain);
          sock.off('close', onClose);
          if (e) reject(e);
          else resolve();
        };
        const onDrain = () => done();
        const onClose = () => done(new Error('socket closed while waiting for drain'));
        sock.on('drain', onDrain);
        sock.on('close', onClose);
      });
    }
  }
}

/**
 * Collects exactly `n` bytes from `sock` (resuming it). Rejects on error, on
 * end of stream or close first, on any byte beyond `n` arriving in the same
 * read, and after `timeoutMs`. Leaves the socket paused with no listener.
 */
export function readExactly(sock: net.Socket, n: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    const finish = (e: Error | null) => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      sock.off('error', onError);
      sock.pause();
      if (e) reject(e);
      else resolve(out);
    };
    const onData = (d: Buffer) => {
      if (got + d.length > n) {
        finish(new Error(`received ${got + d.length} bytes, expected only ${n}`));
        return;
      }
      d.copy(out, got);
      got += d.length;
      if (got === n) finish(null);
    };
    const onEnd = () => finish(new Error(`stream ended after ${got} of ${n} bytes`));
    const onError = (e: Error) => finish(new Error(`socket error after ${got} of ${n} bytes: ${e.message}`));
    const timer = setTimeout(() => finish(new Error(`received ${got} of ${n} bytes within ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('close', onEnd);
    sock.once('error', onError);
    if (n === 0) finish(null);
    else sock.resume();
  });
}

/** Sends `bytes` on an open socket and collects exactly as many back (reading while writing). */
export async function exchange(sock: net.Socket, bytes: Uint8Array, timeoutMs = 10_000): Promise<Buffer> {
  const reading = readExactly(sock, bytes.length, timeoutMs);
  const writing = writeAll(sock, bytes);
  // Reading fails first (with a better message) if writing is stuck.
  const [echoed] = await Promise.all([reading, withTimeout(writing, timeoutMs, 'writing')]);
  return echoed;
}

/** Connects, sends `bytes`, collects exactly bytes.length back, and destroys the socket. */
export async function echoRoundTrip(port: number, bytes: Uint8Array, timeoutMs = 10_000): Promise<Buffer> {
  const sock = await connect(port, { timeoutMs });
  try {
    return await exchange(sock, bytes, timeoutMs);
  } finally {
    sock.destroy();
  }
}

/** Resolves once `sock` has emitted 'close' (at once if it already has). */
export function closed(sock: net.Socket, timeoutMs = 10_000): Promise<boolean> {
  if (sock.closed) return Promise.resolve(false);
  return withTimeout(new Promise<boolean>((r) => sock.once('close', r)), timeoutMs, 'socket close');
}

/** Runs `fn(0..count-1)` with at most `concurrency` calls in flight; rejects on the first failure. */
export async function runPool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown = null;
  const lane = async () => {
    while (failed === null && next < count) {
      const i = next++;
      try {
        await fn(i);
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  if (failed !== null) throw failed;
}
