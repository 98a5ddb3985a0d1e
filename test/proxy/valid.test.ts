/**
 * PROXY protocol, valid headers: behind a listener with proxyProtocol,
 * http.wasm's GET /ip answers the client the header names (versions 1 and
 * 2, IPv4 and IPv6, TLVs skipped), LOCAL and UNKNOWN keep the real peer,
 * and the request written in the same segment as the header is answered
 * (the host reads no byte past the header). On epoll and poll(2).
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { backendTargets } from '../helpers/backends.js';
import { GET_IP, body200, destroyClients, exchange, rejected, startProxiedHttp, tlv, v1, v2, type ProxiedHttp } from './proxy.js';

const targets = backendTargets().filter((t) => t.name === 'epoll' || t.name === 'poll');

afterEach(() => destroyClients());

for (const target of targets) {
  describe.skipIf(target.skipReason !== null)(`PROXY protocol, valid headers (${target.label})`, () => {
    let http: ProxiedHttp;
    beforeAll(async () => {
      http = await startProxiedHttp({ backend: target.name });
    });
    afterAll(async () => {
      await http?.stop();
    });

    const ip = async (chunks: (Buffer | string)[], gapMs?: number) => {
      const r = await exchange(http.port, chunks, { gapMs });
      expect(r.ended).toBe('closed');
      return body200(r.data);
    };

    it('v1 TCP4 and the request in one write: /ip is the carried client', async () => {
      expect(await ip([Buffer.concat([v1('PROXY TCP4 203.0.113.7 192.0.2.1 51234 80\r\n'), Buffer.from(GET_IP)])])).toBe('203.0.113.7\n');
    });

    it('v1 TCP6', async () => {
      expect(await ip([v1(`PROXY TCP6 2001:db8::7 2001:db8::1 51234 80\r\n${GET_IP}`)])).toBe('2001:db8::7\n');
    });

    it('v1 UNKNOWN keeps the real peer', async () => {
      expect(await ip([v1(`PROXY UNKNOWN\r\n${GET_IP}`)])).toBe('127.0.0.1\n');
    });

    it('v2 PROXY over IPv4 and IPv6, in one write with the request', async () => {
      expect(await ip([Buffer.concat([v2({ src: '198.51.100.23' }), Buffer.from(GET_IP)])])).toBe('198.51.100.23\n');
      expect(await ip([Buffer.concat([v2({ src: '2001:db8:0:0:1::42' }), Buffer.from(GET_IP)])])).toBe('2001:db8::1:0:0:42\n'); // RFC 5952: the first of two equal zero runs
    });

    it('v2 with TLVs (skipped): the address still counts', async () => {
      const tlvs = Buffer.concat([tlv(0x01, Buffer.from('h2')), tlv(0x05, Buffer.from('unique-id-1234')), tlv(0x04, Buffer.alloc(300))]);
      expect(await ip([Buffer.concat([v2({ src: '203.0.113.99', tlvs }), Buffer.from(GET_IP)])])).toBe('203.0.113.99\n');
    });

    it('v2 LOCAL (a health check) keeps the real peer', async () => {
      expect(await ip([Buffer.concat([v2({ command: 'LOCAL' }), Buffer.from(GET_IP)])])).toBe('127.0.0.1\n');
    });

    it('a header that arrives in pieces, byte by byte for v1, then the request', async () => {
      const h1 = v1('PROXY TCP4 203.0.113.8 192.0.2.1 1 2\r\n');
      expect(await ip([...Array.from(h1, (b) => Buffer.from([b])), GET_IP], 2)).toBe('203.0.113.8\n');
      const h2 = v2({ src: '203.0.113.9' });
      expect(await ip([h2.subarray(0, 5), h2.subarray(5, 14), h2.subarray(14, 20), h2.subarray(20), GET_IP], 5)).toBe('203.0.113.9\n');
    });

    it('keep-alive: two requests on one proxied connection, one header', async () => {
      const keep = 'GET /ip HTTP/1.1\r\nHost: x\r\n\r\n';
      const r = await exchange(http.port, [Buffer.concat([v2({ src: '192.0.2.200' }), Buffer.from(keep + GET_IP)])]);
      expect(r.ended).toBe('closed');
      expect(r.data.toString().match(/192\.0\.2\.200\n/g)).toHaveLength(2);
    });

    it('many at once: every client gets its own address; nothing refused', async () => {
      const all = await Promise.all(
        Array.from({ length: 50 }, (_, i) => exchange(http.port, [Buffer.concat([v2({ src: `10.0.${i}.1` }), Buffer.from(GET_IP)])])),
      );
      all.forEach((r, i) => expect(body200(r.data)).toBe(`10.0.${i}.1\n`));
      expect(Object.values(rejected(http.server)).every((n) => n === 0)).toBe(true);
      // Each connection closes on the server's side after its answer (the guest may still be lingering for a moment).
      await expect.poll(() => http.server.stats()[0]!.open, { timeout: 3_000 }).toBe(0);
    });
  });
}
