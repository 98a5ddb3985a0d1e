// A client that writes and never reads (echo with maxSendQueueBytes 64 KiB
// and an 8 MiB memory cap; the client writes 64 MiB, respecting Node's own
// backpressure, and reads nothing). The echo plugin's sends block, so it
// stops reading: it holds at most one 64 KiB chunk (bytesIn - bytesOut, the
// bytes inside the guest), the kernel buffers fill, and the client's writes
// stall far short of 64 MiB. This process's RSS, which holds the server's
// worker, stays bounded; other clients are served meanwhile. Then the
// client either reads everything back intact (drained) or goes away
// (closed), and the server cleans up either way.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import {
  ECHO_WASM,
  cleanUp,
  connect,
  exchange,
  fdBaseline,
  host,
  rssMiB,
  settleFds,
  sleep,
  waitFor,
  withTimeout,
  type Hosted,
} from '../helpers/hostile.js';
import { writeAll } from '../helpers/server.js';

afterEach(cleanUp);

const TOTAL = 64 * 1048576;
const BLOCK = randomBytes(1048576); // the payload is this block, repeated
const SEND_QUEUE = 64 * 1024;
const RSS_BOUND_MIB = 100;

/** Writes TOTAL bytes (BLOCK repeated), waiting for 'drain' as Node asks. */
async function writePattern(sock: net.Socket, onProgress: (n: number) => void): Promise<void> {
  for (let off = 0; off < TOTAL; off += BLOCK.length) {
    await writeAll(sock, BLOCK);
    onProgress(off + BLOCK.length);
  }
}

/** Starts the never-reading client and waits until its writes have stalled. */
async function stall(p: Hosted) {
  const sock = await connect(p.port, { paused: true });
  let written = 0;
  const writing = writePattern(sock, (n) => (written = n)).then(
    () => null,
    (e: Error) => e,
  );
  // Stalled: the server has taken nothing new for 500 ms.
  let last = -1;
  let still = 0;
  for (let i = 0; i < 300 && still < 5; i++) {
    await sleep(100);
    const now = p.server.stats()[0]!.bytesIn;
    still = now === last ? still + 1 : 0;
    last = now;
  }
  expect(still).toBe(5);
  return { sock, writing, written: () => written };
}

describe('a client that never reads', () => {
  let rss0 = 0;
  let rssMax = 0;
  let sampler: NodeJS.Timeout | undefined;
  afterEach(() => clearInterval(sampler));

  function sampleRss() {
    rss0 = rssMax = rssMiB();
    sampler = setInterval(() => (rssMax = Math.max(rssMax, rssMiB())), 10);
  }

  it('stalls the writer with bounded memory on both sides, then drains cleanly: every byte comes back intact', async () => {
    const baseline = await fdBaseline();
    const p = await host(ECHO_WASM, { policy: { maxSendQueueBytes: SEND_QUEUE, maxMemoryMiB: 8 } });
    sampleRss();
    const { sock, writing, written } = await stall(p);
    const st = p.server.stats()[0]!;
    const held = st.bytesIn - st.bytesOut;
    console.log(
      `never-reads: stalled after the client wrote ${(written() / 1048576).toFixed(1)} MiB; server took ${(st.bytesIn / 1048576).toFixed(1)} MiB, ` +
        `sent ${(st.bytesOut / 1048576).toFixed(1)} MiB, holds ${held} bytes in the guest; RSS +${(rssMax - rss0).toFixed(0)} MiB`,
    );
    expect(st.bytesIn).toBeLessThan(TOTAL / 2);
    expect(held).toBeLessThanOrEqual(64 * 1024); // one chunk of echo's, no more
    expect(sock.writableLength).toBeLessThanOrEqual(BLOCK.length); // nothing piles up in Node either
    expect(rssMax - rss0).toBeLessThan(RSS_BOUND_MIB);
    expect(p.server.exitReasons()).toEqual([null]);

    // Others are served meanwhile.
    const other = await connect(p.port);
    const msg = randomBytes(4096);
    expect((await exchange(other, msg)).equals(msg)).toBe(true);
    other.destroy();

    // Drain: read everything back while the writer finishes, then end.
    let got = 0;
    let mismatch = -1;
    const reading = withTimeout(
      new Promise<void>((resolve, reject) => {
        sock.on('data', (d: Buffer) => {
          for (let at = 0; at < d.length && mismatch < 0; ) {
            const pos = (got + at) % BLOCK.length;
            const n = Math.min(d.length - at, BLOCK.length - pos);
            if (Buffer.compare(d.subarray(at, at + n), BLOCK.subarray(pos, pos + n)) !== 0) mismatch = got + at;
            at += n;
          }
          got += d.length;
        });
        sock.once('end', () => resolve());
        sock.once('error', reject);
      }),
      60_000,
      'reading 64 MiB back',
    );
    sock.resume();
    expect(await withTimeout(writing, 60_000, 'writing 64 MiB')).toBeNull();
    sock.end();
    await reading;
    expect(mismatch).toBe(-1);
    expect(got).toBe(TOTAL);
    expect(await waitFor(() => p.server.stats()[0]!.open === 0, 5000)).toBe(true);
    expect(p.server.stats()[0]).toMatchObject({ bytesIn: TOTAL + 4096, bytesOut: TOTAL + 4096 });
    expect(rssMax - rss0).toBeLessThan(RSS_BOUND_MIB);
    expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);

    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 90_000);

  it('stalls the writer, then the client goes away: the server closes the connection and drops what it held', async () => {
    const baseline = await fdBaseline();
    const p = await host(ECHO_WASM, { policy: { maxSendQueueBytes: SEND_QUEUE, maxMemoryMiB: 8 } });
    sampleRss();
    const { sock, writing } = await stall(p);
    expect(p.server.stats()[0]!.open).toBe(1);
    sock.destroy(); // unread data in its receive buffer: the kernel resets the connection
    expect(await withTimeout(writing, 5000, 'writer')).toBeInstanceOf(Error);
    expect(await waitFor(() => p.server.stats()[0]!.open === 0, 5000)).toBe(true);
    expect(rssMax - rss0).toBeLessThan(RSS_BOUND_MIB);
    expect(p.server.exitReasons()).toEqual([null]);
    expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);

    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 60_000);
});
