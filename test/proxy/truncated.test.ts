/**
 * PROXY protocol, truncated headers: part of a header then end of stream
 * (v1 and v2, with or without any byte at all) is closed at once, not
 * after the timeout, and counted as `truncated`; so is a reset. The
 * instance keeps serving good clients, and its neighbour too.
 */
import { describe, it, expect } from 'vitest';
import net from 'node:net';
import { proxiedWithNeighbour, exchange, neighbourServes, rejected, stillServes, v1, v2 } from './proxy.js';

// A long timeout: a truncated header must be closed by its end of stream, not by the clock.
const p = proxiedWithNeighbour({ proxyHeaderTimeoutMs: 30_000 });

describe('PROXY protocol: truncated headers', () => {
  it('a partial header then end of stream: closed at once, counted as truncated', async () => {
    const cuts = [
      v1('PROXY TCP4 203.0.113.7 192.0.2.1 5123'),
      v1('P'),
      v2({}).subarray(0, 7),
      v2({}).subarray(0, 16),
      v2({}).subarray(0, 27),
      Buffer.alloc(0), // connect and end without a byte
    ];
    // Ten rounds: the bytes and the end of stream often arrive as one event,
    // reported once by an edge-triggered poller (a read that stops at the
    // short read instead of at would-block waits for an edge that never comes).
    const ROUNDS = 10;
    for (let round = 0; round < ROUNDS; round++) {
      for (const cut of cuts) {
        const r = await exchange(p.http.port, cut.length > 0 ? [cut] : [], { end: true, timeoutMs: 5_000 });
        expect(r.ended, `${JSON.stringify(cut.toString('latin1'))}, round ${round}`).toBe('closed');
        expect(r.data.length).toBe(0);
        expect(r.ms).toBeLessThan(2_000);
      }
    }
    expect(rejected(p.http.server).truncated).toBe(ROUNDS * cuts.length);
    await stillServes(p.http.port);
    await neighbourServes(p.neighbour.port);
  });

  it('a reset in the middle of a header is counted as truncated too', async () => {
    const before = rejected(p.http.server).truncated!;
    await new Promise<void>((resolve) => {
      const s = net.connect(p.http.port, '127.0.0.1', () => {
        s.write(v2({}).subarray(0, 20));
        setTimeout(() => {
          s.resetAndDestroy();
          resolve();
        }, 50);
      });
      s.on('error', () => {});
    });
    await expect.poll(() => rejected(p.http.server).truncated, { timeout: 3_000 }).toBe(before + 1);
    await expect.poll(() => p.http.server.stats()[0]!.open, { timeout: 3_000 }).toBe(0); // counted, then closed
    await stillServes(p.http.port);
  });
});
