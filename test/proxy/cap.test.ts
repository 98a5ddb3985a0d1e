/**
 * PROXY protocol and the connection cap: connections still reading their
 * header count against maxConnections (a flood of silent connections
 * cannot open more than the cap), past the cap they are closed at accept
 * (refused), and once the header timeout has closed them the instance
 * serves again.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import net from 'node:net';
import { destroyClients, exchange, rejected, startProxiedHttp, stillServes, type ProxiedHttp } from './proxy.js';

let http: ProxiedHttp;

beforeAll(async () => {
  http = await startProxiedHttp({ policy: { maxConnections: 4, proxyHeaderTimeoutMs: 500 } });
});
afterEach(() => destroyClients());
afterAll(async () => {
  await http?.stop();
});

describe('PROXY protocol: pending headers and maxConnections', () => {
  it('silent connections fill the cap, more are refused, the timeout frees the instance', async () => {
    const silent: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = net.connect(http.port, '127.0.0.1');
      s.on('error', () => {});
      silent.push(s);
    }
    await expect.poll(() => http.server.stats()[0]!.open, { timeout: 3_000 }).toBe(4);
    // The guest has seen none of them.
    expect(http.server.stats()[0]!.accepted).toBe(0);
    const over = await exchange(http.port, [], { timeoutMs: 3_000 });
    expect(over.ended).toBe('closed');
    await expect.poll(() => http.server.stats()[0]!.refused, { timeout: 3_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(() => rejected(http.server).timeout, { timeout: 3_000 }).toBe(4);
    await expect.poll(() => http.server.stats()[0]!.open, { timeout: 3_000 }).toBe(0); // counted, then closed
    for (const s of silent) s.destroy();
    await stillServes(http.port);
  });
});
