/**
 * Slow readers in the ws room. A client that does not read while others
 * talk must be dropped, not buffered for without limit:
 *
 * - a raw socket that never reads, while 64 MiB go through the room, is
 *   evicted; the fast reader next to it receives every message in order;
 *   and the instance runs all along under a 16 MiB memory cap (had the
 *   room queued for the sleeper, it would have run out of memory and
 *   trapped, which the restart counter would show);
 * - a `ws` client that stops reading and then resumes reads an unbroken
 *   prefix of the messages, then close code 1008;
 * - the room-wide budget (maxBuffered) evicts readers even when each is
 *   within its own maxQueue, and refuses a sender (1013) when the budget
 *   cannot hold the message it is sending.
 *
 * The fast reader lives in this process, so the sender paces itself on it
 * (at most WINDOW messages ahead): the test measures the server, not how
 * fast this process can read.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { problems, totals, waitFor, withTimeout } from '../helpers/server.js';
import { startWs, openClient, closeWsClients, closedWith, rawUpgrade, frame, type WebSocket, type WsServer } from '../helpers/ws.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const WINDOW = 8;

let ws: WsServer | undefined;

afterEach(async () => {
  closeWsClients();
  await ws?.stop();
  ws = undefined;
});

/**
 * Sends `count` binary messages of `size` bytes from `sender`, each at most
 * WINDOW ahead of what `reader` has received; resolves once `reader` has
 * all of them. Each message starts with its sequence number; the reader
 * checks every one arrives, in order.
 */
async function talk(sender: WebSocket, reader: WebSocket, count: number, size: number): Promise<void> {
  let received = 0;
  let wake: (() => void) | null = null;
  const errors: string[] = [];
  reader.on('message', (data: Buffer) => {
    if (data.length !== size || data.readUInt32BE(0) !== received)
      errors.push(`message ${received}: ${data.length} bytes, seq ${data.readUInt32BE(0)}`);
    received++;
    wake?.();
  });
  const payload = randomBytes(size);
  for (let k = 0; k < count; k++) {
    while (k - received >= WINDOW) {
      await withTimeout(new Promise<void>((r) => (wake = r)), 10_000, `message ${received} at the fast reader`);
    }
    payload.writeUInt32BE(k, 0);
    sender.send(Buffer.from(payload), { binary: true });
  }
  while (received < count) await withTimeout(new Promise<void>((r) => (wake = r)), 10_000, `message ${received} at the fast reader`);
  expect(errors).toEqual([]);
}

function noTrapsOrRestarts(server: WsServer): void {
  const s = server.server.stats()[0]!;
  expect(s.restarts).toBe(0);
  expect(s.ends).toEqual({});
  expect(problems(server.logs)).toEqual([]);
}

describe('ws slow readers', () => {
  it('drops a raw client that never reads while 64 MiB go through the room, under a 16 MiB memory cap', async () => {
    ws = await startWs({ policy: { maxMemoryMiB: 16 }, config: 'closeTimeoutMs=300' });
    const sender = await openClient(ws.url);
    const reader = await openClient(ws.url);
    const sleeper = await rawUpgrade(ws.port, { paused: true }); // reads nothing from here on
    expect(totals(ws.server).open).toBe(3);

    await talk(sender, reader, 1024, 64 * KiB);

    // Evicted (its queue passed maxQueue), then dropped at closeTimeoutMs.
    expect(await waitFor(() => totals(ws!.server).open === 2, 5_000)).toBe(true);
    noTrapsOrRestarts(ws);
    // What it was sent before the eviction is still in the kernel's buffers.
    await sleeper.frames.end(5_000);
    expect(sleeper.frames.received).toBeGreaterThan(0);
    expect(sleeper.frames.received).toBeLessThan(32 * MiB);
  }, 60_000);

  it('a ws client that stops reading, then resumes, reads an unbroken prefix and then close 1008', async () => {
    ws = await startWs({ config: 'closeTimeoutMs=10000' }); // time to come back and read the close frame
    const sender = await openClient(ws.url);
    const reader = await openClient(ws.url);
    const slow = await openClient(ws.url);
    const seqs: number[] = [];
    slow.on('message', (data: Buffer) => seqs.push(data.readUInt32BE(0)));
    const closed = closedWith(slow, 20_000);
    // ws's socket: pausing it stops reading from the kernel.
    const sock = (slow as unknown as { _socket: import('node:net').Socket })._socket;
    sock.pause();

    // Enough to fill the loopback buffers on both sides and pass maxQueue.
    await talk(sender, reader, 512, 64 * KiB);
    sock.resume();

    const { code, reason } = await closed;
    expect(code).toBe(1008);
    expect(reason).toBe('reader too slow');
    expect(seqs.length).toBeGreaterThan(0);
    expect(seqs.length).toBeLessThan(512);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i));
    noTrapsOrRestarts(ws);
  }, 60_000);
});

describe('ws room budget (maxBuffered)', () => {
  it('evicts readers that are each within maxQueue once together they hold more than the room may', async () => {
    // Generous per reader, tight for the room: only the room-wide budget can bite.
    ws = await startWs({ policy: { maxMemoryMiB: 16 }, config: `maxQueue=${64 * MiB} maxBuffered=${2 * MiB} closeTimeoutMs=300` });
    const sender = await openClient(ws.url);
    const reader = await openClient(ws.url);
    for (let i = 0; i < 3; i++) await rawUpgrade(ws.port, { paused: true });
    expect(totals(ws.server).open).toBe(5);

    await talk(sender, reader, 512, 64 * KiB);

    expect(await waitFor(() => totals(ws!.server).open === 2, 5_000)).toBe(true);
    noTrapsOrRestarts(ws);
  }, 60_000);

  it('refuses with 1013 a message the budget cannot hold even with no reader to evict', async () => {
    ws = await startWs({ config: `maxBuffered=${64 * KiB}` });
    const raw = await rawUpgrade(ws.port);
    raw.sock.write(frame(2, Buffer.alloc(100 * KiB)));
    const close = await raw.frames.closeFrame();
    expect(close).toEqual({ code: 1013, reason: 'server busy' });
    // A message that fits is still fine for others.
    const a = await openClient(ws.url);
    const b = await openClient(ws.url);
    const got = new Promise<Buffer>((r) => b.once('message', r));
    a.send(Buffer.alloc(32 * KiB, 1));
    expect((await got).length).toBe(32 * KiB);
    noTrapsOrRestarts(ws);
  });
});
