/**
 * Many connections against dist/plugins/echo.wasm: 1,000 at once, 10,000
 * short-lived ones, and descriptor accounting. The host runs in this
 * process (its instance is a worker thread), so /proc/self/fd counts the
 * clients' sockets and the server's (listener, connections, epoll, eventfd,
 * port reservation) together.
 */
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import {
  startEcho,
  connect,
  exchange,
  openFds,
  warmUpLibuv,
  totals,
  problems,
  waitFor,
  runPool,
  closed,
  withTimeout,
  destroyClients,
  type EchoServer,
} from './helpers/server.js';

let running: EchoServer[] = [];

async function start(): Promise<EchoServer> {
  const s = await startEcho();
  running.push(s);
  return s;
}

beforeAll(async () => {
  await warmUpLibuv();
});

afterEach(async () => {
  destroyClients();
  await Promise.all(running.map((s) => s.stop()));
  running = [];
});

/** Waits (bounded) for the descriptor count to settle at `expected`, then requires it exactly. */
async function expectFds(expected: number, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => openFds() === expected, timeoutMs, 25);
  expect(openFds(), what).toBe(expected);
}

/** A payload unique to (connection, round): both numbers, then random bytes of a varying length. */
function payload(conn: number, round: number): Buffer {
  const b = randomBytes(8 + ((conn * 7 + round * 131) % 2048));
  b.writeUInt32BE(conn, 0);
  b.writeUInt32BE(round, 4);
  return b;
}

describe('connections', () => {
  it('serves 1,000 concurrent connections, each doing several round-trips', async () => {
    const CONNS = 1000;
    const ROUNDS = 3;
    const t0 = performance.now();
    const echo = await start();

    // Open all of them first, so that all 1,000 are open in the server at once.
    const socks: net.Socket[] = [];
    await runPool(CONNS, 200, async (i) => {
      socks[i] = await connect(echo.port, { timeoutMs: 15_000 });
    });
    expect(await waitFor(() => totals(echo.server).open === CONNS, 10_000)).toBe(true);
    expect(totals(echo.server)).toMatchObject({ accepted: CONNS, open: CONNS });

    // Every connection does its rounds concurrently with all the others;
    // each echo must be exactly its own payload.
    let ok = 0;
    await withTimeout(
      Promise.all(
        socks.map(async (sock, i) => {
          for (let r = 0; r < ROUNDS; r++) {
            const msg = payload(i, r);
            const echoed = await exchange(sock, msg, 20_000);
            if (!echoed.equals(msg)) throw new Error(`connection ${i} round ${r}: wrong echo`);
            ok++;
          }
        }),
      ),
      30_000,
      '1,000 connections x 3 round-trips',
    );
    expect(ok).toBe(CONNS * ROUNDS);

    for (const s of socks) s.destroy();
    expect(await waitFor(() => totals(echo.server).open === 0, 10_000)).toBe(true);
    const t = totals(echo.server);
    expect(t.accepted).toBe(CONNS);
    expect(t.open).toBe(0);
    let bytes = 0;
    for (let i = 0; i < CONNS; i++) for (let r = 0; r < ROUNDS; r++) bytes += 8 + ((i * 7 + r * 131) % 2048);
    expect(t.bytesIn).toBe(bytes);
    expect(t.bytesOut).toBe(bytes);
    expect(problems(echo.logs)).toEqual([]);
    expect(performance.now() - t0).toBeLessThan(40_000);
  }, 50_000);

  it('serves 10,000 short-lived connections without leaking a descriptor', async () => {
    const TOTAL = 10_000;
    const t0 = performance.now();
    const beforeServer = openFds();
    const echo = await start();
    const baseline = openFds(); // the server is up: listener, epoll, eventfd, reservation, worker
    expect(baseline).toBeGreaterThan(beforeServer);

    await withTimeout(
      runPool(TOTAL, 100, async (i) => {
        const sock = await connect(echo.port);
        const msg = Buffer.from(`hello ${i}`);
        const echoed = await exchange(sock, msg, 10_000);
        if (!echoed.equals(msg)) throw new Error(`connection ${i}: wrong echo ${echoed.toString()}`);
        // Close politely: our FIN, then the server's (it closes on end of stream).
        sock.end();
        await closed(sock, 10_000);
      }),
      45_000,
      '10,000 short-lived connections',
    );

    // Every client socket and every server-side connection is gone: exactly
    // the descriptors of the running server remain.
    await expectFds(baseline, 'descriptors after 10,000 connections (server running)');
    expect(await waitFor(() => totals(echo.server).open === 0, 5_000)).toBe(true);
    const t = totals(echo.server);
    expect(t.open).toBe(0);
    expect(t.accepted).toBe(TOTAL);
    expect(problems(echo.logs)).toEqual([]);

    await echo.stop();
    await expectFds(beforeServer, 'descriptors after stop()');
    expect(performance.now() - t0).toBeLessThan(50_000);
  }, 55_000);

  it('stop() closes every descriptor it opened, even with connections still open', async () => {
    const beforeServer = openFds();
    const echo = await start();
    const withServer = openFds();
    // At least: the port reservation, the listener, the instance's epoll fd
    // and eventfd (the worker thread's own libuv loop adds more).
    expect(withServer - beforeServer).toBeGreaterThanOrEqual(4);

    // 50 clients connected and echoing when the server stops.
    const socks = await Promise.all(Array.from({ length: 50 }, () => connect(echo.port)));
    await Promise.all(
      socks.map(async (s, i) => {
        const msg = payload(i, 0);
        expect((await exchange(s, msg)).equals(msg)).toBe(true);
      }),
    );
    expect(totals(echo.server).open).toBe(50);
    expect(openFds()).toBe(withServer + 100); // 50 client ends + 50 server ends

    await withTimeout(echo.stop(), 10_000, 'stop()');
    expect(echo.server.exitReasons()).toEqual(['stopped']);
    expect(echo.server.stats()[0]!.open).toBe(0);
    // The server closed its ends of those connections: each client sees end of stream.
    await Promise.all(socks.map((s) => closed(s, 10_000)));
    await expectFds(beforeServer, 'descriptors after stop() with connections open');

    // And the port is free again: no listener or reservation holds it.
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(echo.port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => again.close(() => resolve()));
    expect(problems(echo.logs)).toEqual([]);
  }, 30_000);
});
