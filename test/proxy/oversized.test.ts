/**
 * PROXY protocol, oversized headers: a v2 length field past the bound
 * (PROXY_V2_MAX_BYTES) is refused as soon as the fixed part is in, a v1
 * line without CRLF within 107 bytes as soon as the 107th byte is; each is
 * closed and counted as `oversized`, and the instance keeps serving (its
 * neighbour too). A v2 header of exactly the bound is accepted.
 */
import { describe, it, expect } from 'vitest';
import { PROXY_V2_MAX_BYTES } from '../../dist/host/sandbox/proxy-header.js';
import { proxiedWithNeighbour, GET_IP, body200, exchange, neighbourServes, rejected, stillServes, tlv, v1, v2 } from './proxy.js';

const p = proxiedWithNeighbour({ proxyHeaderTimeoutMs: 30_000 });

describe('PROXY protocol: oversized headers', () => {
  it('v2: a length past the bound is refused from the fixed 16 bytes alone', async () => {
    // Only the fixed part is sent: the refusal cannot be waiting for the rest.
    for (const length of [PROXY_V2_MAX_BYTES - 16 + 1, 0xffff]) {
      const r = await exchange(p.http.port, [v2({ length }).subarray(0, 16)], { timeoutMs: 5_000 });
      expect(r.ended).toBe('closed');
      expect(r.ms).toBeLessThan(2_000);
    }
    expect(rejected(p.http.server).oversized).toBe(2);
    await stillServes(p.http.port);
  });

  it('v2: a header of exactly the bound (TLVs filling it) is accepted', async () => {
    const fill = PROXY_V2_MAX_BYTES - 16 - 12 - 3;
    const h = v2({ src: '203.0.113.50', tlvs: tlv(0xe0, Buffer.alloc(fill, 0x61)) });
    expect(h.length).toBe(PROXY_V2_MAX_BYTES);
    const r = await exchange(p.http.port, [Buffer.concat([h, Buffer.from(GET_IP)])]);
    expect(body200(r.data)).toBe('203.0.113.50\n');
  });

  it('v1: no CRLF within 107 bytes', async () => {
    const before = rejected(p.http.server).oversized!;
    const long = v1(`PROXY TCP4 ${'1'.repeat(120)}`);
    const r = await exchange(p.http.port, [long], { timeoutMs: 5_000 });
    expect(r.ended).toBe('closed');
    expect(r.data.length).toBe(0);
    expect(r.ms).toBeLessThan(2_000);
    // 107 bytes, the CRLF at 108-109: still too long.
    const r2 = await exchange(p.http.port, [v1(`PROXY UNKNOWN ${'x'.repeat(107 - 14)}\r\n${GET_IP}`)], { timeoutMs: 5_000 });
    expect(r2.data.length).toBe(0);
    expect(rejected(p.http.server).oversized).toBe(before + 2);
    // 107 bytes with the CRLF: the longest line allowed.
    const r3 = await exchange(p.http.port, [v1(`PROXY UNKNOWN ${'x'.repeat(107 - 16)}\r\n${GET_IP}`)]);
    expect(body200(r3.data)).toBe('127.0.0.1\n');
    await stillServes(p.http.port);
    await neighbourServes(p.neighbour.port);
  });
});
