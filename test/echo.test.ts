/**
 * Echo correctness of dist/plugins/echo.wasm over real loopback sockets:
 * payload sizes up to 8 MiB (partial writes and would-block on both sides),
 * a client that writes everything before reading (the server must stop
 * reading while its writes block, keep what it could not send, and resume),
 * ping-pong ordering on one connection, half-close, and client resets.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  startEcho,
  connect,
  echoRoundTrip,
  exchange,
  readExactly,
  sha256,
  totals,
  problems,
  waitFor,
  sleep,
  withTimeout,
  closed,
  destroyClients,
  type EchoServer,
} from './helpers/server.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let echo: EchoServer;

beforeAll(async () => {
  echo = await startEcho();
});

afterEach(() => {
  destroyClients();
});

afterAll(async () => {
  destroyClients();
  await echo?.stop();
});

/** Waits until the server has no connection open (every one the tests made has been closed by it). */
async function expectAllClosed(timeoutMs = 10_000): Promise<void> {
  const ok = await waitFor(() => totals(echo.server).open === 0, timeoutMs);
  expect(totals(echo.server).open, 'connections still open in the server').toBe(0);
  expect(ok).toBe(true);
}

type Totals = ReturnType<typeof totals>;

/**
 * Expects the server's counters to have moved by exactly `delta` since
 * `before`. The worker adds to them just after each syscall returns, so the
 * client can see its echo a moment before the counter does: poll briefly.
 */
async function expectDelta(before: Totals, delta: Partial<Totals>): Promise<void> {
  const moved = (): Partial<Totals> => {
    const now = totals(echo.server);
    const d: Partial<Totals> = {};
    for (const k of Object.keys(delta) as (keyof Totals)[]) d[k] = now[k] - before[k];
    return d;
  };
  await waitFor(() => Object.entries(delta).every(([k, v]) => moved()[k as keyof Totals] === v), 2_000);
  expect(moved()).toEqual(delta);
}

describe('echo: payload sizes', () => {
  it.each([
    ['1 B', 1],
    ['100 B', 100],
    ['64 KiB', 64 * KiB],
    ['1 MiB', MiB],
    ['8 MiB', 8 * MiB],
  ])(
    'echoes %s of random data unchanged',
    async (_name, size) => {
      const data = randomBytes(size);
      const before = totals(echo.server);
      const echoed = await echoRoundTrip(echo.port, data, 30_000);
      expect(echoed.length).toBe(size);
      expect(sha256(echoed)).toBe(sha256(data));
      await expectAllClosed();
      await expectDelta(before, { accepted: 1, bytesIn: size, bytesOut: size });
      expect(problems(echo.logs)).toEqual([]);
    },
    40_000,
  );
});

describe('echo: flow control', () => {
  it('stops reading while its writes block and resumes when the client reads (client writes all 8 MiB first)', async () => {
    const size = 8 * MiB;
    const data = randomBytes(size);
    const before = totals(echo.server);
    // Paused from the start: the client reads nothing until told to.
    const sock = await connect(echo.port, { paused: true });
    const written = new Promise<void>((resolve, reject) => sock.write(data, (e) => (e ? reject(e) : resolve())));
    written.catch(() => {}); // observed below

    // The server echoes until its send buffer and the client's receive
    // buffer are full, then must stop reading. Wait for its byte counters
    // to stand still.
    let last = -1;
    let still = 0;
    const stalled = await waitFor(
      () => {
        const inNow = totals(echo.server).bytesIn - before.bytesIn;
        still = inNow === last && inNow > 0 ? still + 1 : 0;
        last = inNow;
        return still >= 5; // unchanged over 5 samples, 100 ms apart
      },
      15_000,
      100,
    );
    expect(stalled).toBe(true);
    const mid = totals(echo.server);
    const tookIn = mid.bytesIn - before.bytesIn;
    const sentOut = mid.bytesOut - before.bytesOut;
    // It did stop: not everything was read, and what it read but could not
    // send is held (read and unsent > 0), not dropped.
    expect(tookIn).toBeLessThan(size);
    expect(tookIn - sentOut).toBeGreaterThan(0);
    expect(sock.readableLength).toBe(0); // the client really had read nothing

    // Now the client reads: everything arrives, in order, and the server
    // resumes reading what it left in the kernel.
    const echoed = await readExactly(sock, size, 30_000);
    await withTimeout(written, 10_000, 'client write');
    expect(sha256(echoed)).toBe(sha256(data));
    sock.destroy();
    await expectAllClosed();
    await expectDelta(before, { accepted: 1, bytesIn: size, bytesOut: size });
    expect(problems(echo.logs)).toEqual([]);
  }, 45_000);
});

describe('echo: one connection, many messages', () => {
  it('answers 1,000 sequential 64-byte ping-pongs in order', async () => {
    const before = totals(echo.server);
    const sock = await connect(echo.port);
    for (let i = 0; i < 1000; i++) {
      // Distinct messages: a sequence number, then random bytes.
      const msg = randomBytes(64);
      msg.writeUInt32BE(i, 0);
      const echoed = await exchange(sock, msg, 5_000);
      if (!echoed.equals(msg)) {
        expect.fail(`ping ${i}: echoed ${echoed.toString('hex')} instead of ${msg.toString('hex')}`);
      }
    }
    // All on the one connection, every byte once.
    await expectDelta(before, { accepted: 1, bytesIn: 64_000, bytesOut: 64_000 });
    sock.destroy();
    await expectAllClosed();
  }, 30_000);
});

describe('echo: half-close', () => {
  it.each([
    ['5 B', 5],
    ['1 MiB', MiB],
    ['8 MiB', 8 * MiB],
  ])(
    'after the client shuts down its side (%s), sends the whole echo and then end of stream',
    async (_name, size) => {
      const data = randomBytes(size);
      const sock = await connect(echo.port, { allowHalfOpen: true });
      const chunks: Buffer[] = [];
      let got = 0;
      let endAt = -1;
      const finished = new Promise<boolean>((resolve, reject) => {
        sock.on('data', (d: Buffer) => {
          chunks.push(d);
          got += d.length;
        });
        sock.once('end', () => {
          endAt = got;
        });
        sock.once('error', reject);
        sock.once('close', resolve);
      });
      // The data, then FIN: the client's write side is shut down from here on.
      sock.end(data);
      const hadError = await withTimeout(finished, 30_000, `half-close echo (got ${got} of ${size} bytes)`);
      expect(hadError).toBe(false);
      expect(endAt).toBe(size); // end of stream came, and only after every byte
      const echoed = Buffer.concat(chunks);
      expect(echoed.length).toBe(size);
      expect(sha256(echoed)).toBe(sha256(data));
      await expectAllClosed();
      expect(problems(echo.logs)).toEqual([]);
    },
    40_000,
  );
});

describe('echo: client reset', () => {
  it('survives resets at every stage and keeps echoing', async () => {
    // 1. Reset right after sending a few bytes (the server may not have read them yet).
    {
      const sock = await connect(echo.port);
      await new Promise<void>((r, j) => sock.write(randomBytes(100), (e) => (e ? j(e) : r())));
      sock.resetAndDestroy();
      await closed(sock);
    }
    // 2. Reset after a completed echo.
    {
      const sock = await connect(echo.port);
      const msg = randomBytes(1000);
      expect((await exchange(sock, msg)).equals(msg)).toBe(true);
      sock.resetAndDestroy();
      await closed(sock);
    }
    // 3. Reset while the server holds unsent bytes: the client reads
    //    nothing, so the server's writes block and it registers writable;
    //    the reset must then end that connection cleanly.
    {
      const before = totals(echo.server);
      const sock = await connect(echo.port, { paused: true });
      sock.write(randomBytes(8 * MiB)); // more than the kernel buffers on both sides hold
      let last = -1;
      let still = 0;
      const stalled = await waitFor(
        () => {
          const t = totals(echo.server);
          const inNow = t.bytesIn - before.bytesIn;
          still = inNow === last && inNow > 0 ? still + 1 : 0;
          last = inNow;
          return still >= 3;
        },
        15_000,
        100,
      );
      expect(stalled).toBe(true);
      const t = totals(echo.server);
      expect(t.bytesIn - before.bytesIn).toBeLessThan(8 * MiB); // stopped reading
      expect(t.bytesIn - t.bytesOut).toBeGreaterThan(before.bytesIn - before.bytesOut); // holds unsent bytes
      sock.resetAndDestroy();
      await closed(sock);
    }
    // 4. Many resets at once, mid-transfer.
    {
      const socks = await Promise.all(Array.from({ length: 50 }, () => connect(echo.port)));
      socks.forEach((s, i) => s.write(randomBytes(1 + i * 997)));
      await sleep(20);
      socks.forEach((s) => s.resetAndDestroy());
      await Promise.all(socks.map((s) => closed(s)));
    }

    // The server closed every one of them...
    await expectAllClosed();
    expect(echo.server.stats().every((s) => s.running)).toBe(true);
    expect(echo.server.exitReasons()).toEqual([null]);
    // ...and still echoes correctly on a new connection.
    const data = randomBytes(256 * KiB);
    const echoed = await echoRoundTrip(echo.port, data, 10_000);
    expect(sha256(echoed)).toBe(sha256(data));
    await expectAllClosed();
    expect(problems(echo.logs)).toEqual([]);
  }, 45_000);
});
