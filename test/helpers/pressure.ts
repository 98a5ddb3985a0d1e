/**
 * Memory pressure from the outside: a flood of connections that each send a
 * large message and stop midway (slowly: one connection at a time, none of
 * them ever finishing), against a plugin with a small memory cap, until the
 * instance refuses new connections. Bounded in connections and time.
 */
import net from 'node:net';
import type { PluginServer } from '../../dist/host/index.js';
import { HOST, sleep } from './server.js';

export interface Flooder {
  sock: net.Socket;
  /** Everything the server sent it. */
  received: Buffer;
  /** The server closed its side, or the connection failed. */
  ended: boolean;
}

export interface FloodResult {
  /** The flood's connections, each with what it received. */
  flooders: Flooder[];
  /** The first connection the instance refused, with what it said. */
  refused: Flooder | null;
}

function track(sock: net.Socket): Flooder {
  const f: Flooder = { sock, received: Buffer.alloc(0), ended: false };
  sock.on('data', (d: Buffer) => (f.received = Buffer.concat([f.received, d])));
  sock.on('end', () => (f.ended = true));
  sock.on('close', () => (f.ended = true));
  sock.on('error', () => (f.ended = true));
  return f;
}

export function open(port: number): Promise<Flooder> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: HOST, allowHalfOpen: true });
    const f = track(sock);
    sock.once('connect', () => resolve(f));
    sock.once('error', reject);
  });
}

/** Resolves once `cond` holds (polling), or rejects naming `what` after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

/**
 * Opens flood connections one after another, each sending `message()` (a
 * large message's start), until a new connection is refused (it receives
 * `isRefusal` bytes without having sent anything) or `max` are open.
 * Before each new one it waits until the server has read what the last one
 * sent (its bytes-in counter moved), so the flood grows the instance's
 * buffers step by step.
 */
export async function floodUntilRefused(
  server: PluginServer,
  port: number,
  opts: { message: () => Buffer; isRefusal: (b: Buffer) => boolean; max: number; timeoutMs?: number },
): Promise<FloodResult> {
  const flooders: Flooder[] = [];
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const bytesIn = () => server.stats().reduce((n, s) => n + s.bytesIn, 0);
  for (let i = 0; i < opts.max && Date.now() < deadline; i++) {
    const f = await open(port);
    // A refusal comes at once, before the client says anything.
    await sleep(20);
    if (opts.isRefusal(f.received)) return { flooders, refused: f };
    const msg = opts.message();
    const before = bytesIn();
    f.sock.write(msg);
    flooders.push(f);
    // Bounded: the server may also have stopped reading (it is shedding, or this one was shed).
    const end = Date.now() + 2_000;
    while (bytesIn() - before < msg.length && !f.ended && f.received.length === 0 && Date.now() < end) await sleep(5);
  }
  return { flooders, refused: null };
}
