/**
 * PROXY protocol, slow headers: a connection that sends part of a header
 * (or nothing) and then waits is closed once proxyHeaderTimeoutMs has
 * passed, measured, and counted as `timeout`; meanwhile, and afterwards,
 * the instance serves good clients at once (a slow header holds no one up),
 * and its neighbour too.
 */
import { describe, it, expect } from 'vitest';
import { proxiedWithNeighbour, exchange, neighbourServes, rejected, stillServes, v1, v2 } from './proxy.js';

const TIMEOUT_MS = 1_000;

const p = proxiedWithNeighbour({ proxyHeaderTimeoutMs: TIMEOUT_MS });

describe('PROXY protocol: slow headers', () => {
  it('a partial header, then silence: closed after the timeout, counted; good clients served meanwhile', async () => {
    const started = performance.now();
    const slow = [
      exchange(p.http.port, [v1('PROXY TCP4 203.0.113.7')], { timeoutMs: 5_000 }),
      exchange(p.http.port, [v2({}).subarray(0, 20)], { timeoutMs: 5_000 }),
      exchange(p.http.port, [], { timeoutMs: 5_000 }), // not a byte
    ];
    // While they wait, a good client is answered at once.
    await new Promise((r) => setTimeout(r, 50));
    const t = performance.now();
    await stillServes(p.http.port);
    expect(performance.now() - t).toBeLessThan(TIMEOUT_MS);
    const results = await Promise.all(slow);
    const elapsed = performance.now() - started;
    for (const r of results) {
      expect(r.ended).toBe('closed');
      expect(r.data.length).toBe(0);
    }
    // Closed after the timeout, and not much later (the wait wakes for the header's deadline).
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 1_000);
    expect(rejected(p.http.server).timeout).toBe(3);
    console.log(`slow headers: closed ${Math.round(elapsed)} ms after connecting (timeout ${TIMEOUT_MS} ms)`);
    await stillServes(p.http.port);
    await neighbourServes(p.neighbour.port);
    // The good clients' connections end once the server reads their close.
    await expect.poll(() => p.http.server.stats()[0]!.open, { timeout: 3_000 }).toBe(0);
  });

  it('byte by byte past the timeout: refused; the deadline is for the whole header, not per byte', async () => {
    const h = v1('PROXY TCP4 203.0.113.7 192.0.2.1 1 2\r\n');
    // 38 bytes, 40 ms apart: 1,520 ms in all, past the 1,000 ms timeout.
    const r = await exchange(
      p.http.port,
      Array.from(h, (b) => Buffer.from([b])),
      { gapMs: 40, timeoutMs: 5_000 },
    );
    expect(r.ended).toBe('closed');
    expect(r.data.length).toBe(0);
    expect(rejected(p.http.server).timeout).toBe(4);
  });
});
