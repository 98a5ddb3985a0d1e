/**
 * PROXY protocol across a reload: the new version reads headers too (the
 * policy comes with the version), a client in the middle of its header
 * when the old version drains is closed (a connection the guest never saw
 * is not handed over), and the counters add up across versions.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import net from 'node:net';
import { destroyClients, rejected, startProxiedHttp, stillServes, v2, type ProxiedHttp } from './proxy.js';

let http: ProxiedHttp;

beforeAll(async () => {
  http = await startProxiedHttp({ policy: { proxyHeaderTimeoutMs: 10_000 } });
});
afterEach(() => destroyClients());
afterAll(async () => {
  await http?.stop();
});

describe('PROXY protocol across a reload', () => {
  it('the new version reads headers; a half-sent header at the drain is closed', async () => {
    await stillServes(http.port, '192.0.2.1');
    const half = net.connect(http.port, '127.0.0.1');
    half.on('error', () => {});
    const closed = new Promise<void>((r) => half.on('close', () => r()));
    half.write(v2({}).subarray(0, 20));
    await expect.poll(() => http.server.stats()[0]!.open, { timeout: 3_000 }).toBe(1);
    const result = await http.server.reload();
    expect(result.generation).toBe(1);
    await closed; // long before its 10 s header timeout
    await result.drained;
    await stillServes(http.port, '192.0.2.2');
    expect(http.server.stats()[0]!.accepted).toBe(2);
    expect(Object.values(rejected(http.server)).reduce((a, b) => a + b, 0)).toBe(0);
  });
});
