/**
 * PROXY protocol across a reload: the new version reads headers too (the
 * policy comes with the version), a client in the middle of its header
 * when the old version drains is answered there once its header is complete
 * (a connection the guest never saw is not handed over), and a keep-alive connection handed over to the new
 * version (live handover) keeps the client address its header named.
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

/** Sends one keep-alive GET /ip on `s` and resolves with the body. */
function ask(s: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`no answer: ${JSON.stringify(text)}`)), 5_000);
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const m = /\r\nContent-Length: (\d+)\r\n/i.exec(text);
      if (head >= 0 && m && text.length >= head + 4 + Number(m[1])) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(text.slice(head + 4));
      }
    };
    s.on('data', onData);
    s.write('GET /ip HTTP/1.1\r\nHost: x\r\n\r\n');
  });
}

describe('PROXY protocol across a reload', () => {
  it('a keep-alive connection handed over to the new version keeps its carried client address', async () => {
    const s = net.connect(http.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(v2({ src: '203.0.113.111' }));
    expect(await ask(s)).toBe('203.0.113.111\n');
    const result = await http.server.reload();
    await result.drained;
    expect(http.server.reloadStats().handoversDone).toBeGreaterThanOrEqual(1);
    // The same socket, now served by the new version.
    expect(await ask(s)).toBe('203.0.113.111\n');
    s.destroy();
  });

  it('the new version reads headers; a header half-sent when the old version drains is read there and answered', async () => {
    await expect.poll(() => http.server.stats()[0]!.open, { timeout: 3_000 }).toBe(0);
    const accepted = http.server.stats()[0]!.accepted;
    await stillServes(http.port, '192.0.2.1');
    const half = net.connect(http.port, '127.0.0.1');
    half.on('error', () => {});
    const header = v2({ src: '198.51.100.9' });
    half.write(header.subarray(0, 20));
    await expect.poll(() => http.server.stats()[0]!.open, { timeout: 3_000 }).toBe(1);
    const result = await http.server.reload();
    expect(result.generation).toBe(2);
    // The old version drains; the rest of the header reaches it, then the
    // request: the draining guest accepts the connection and answers (and
    // closes after the response, as a draining HTTP server does).
    half.write(header.subarray(20));
    expect(await ask(half)).toBe('198.51.100.9\n');
    await result.drained;
    await stillServes(http.port, '192.0.2.2');
    expect(http.server.stats()[0]!.accepted).toBe(accepted + 3);
    expect(Object.values(rejected(http.server)).reduce((a, b) => a + b, 0)).toBe(0);
  });
});
