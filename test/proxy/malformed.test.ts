/**
 * PROXY protocol, malformed headers: garbage, a bad v2 signature or
 * version or command, bad v1 fields, and no header at all (a plain HTTP
 * request) are each closed before the guest sees them and counted as
 * `malformed`; the instance keeps serving good clients, its neighbour too,
 * and the guest never saw a refused connection (accepted counts only the good).
 */
import { describe, it, expect } from 'vitest';
import { proxiedWithNeighbour, GET_IP, V2_SIGNATURE, exchange, neighbourServes, rejected, stillServes, v1, v2 } from './proxy.js';

const p = proxiedWithNeighbour();

const BAD: [string, Buffer][] = [
  ['binary garbage', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])],
  ['a plain HTTP request (no header)', Buffer.from(GET_IP)],
  ['v2: signature wrong in its 9th byte', Buffer.concat([V2_SIGNATURE.subarray(0, 8), Buffer.from([0x00]), v2({}).subarray(9)])],
  ['v2: version 1 in the version nibble', v2({ version: 1 })],
  ['v2: command 0x3', Buffer.concat([v2({}).subarray(0, 12), Buffer.from([0x23]), v2({}).subarray(13)])],
  ['v2: PROXY over IPv4 with a length too short for the addresses', v2({ length: 4 }).subarray(0, 20)],
  ['v1: "PROXY" without its space', v1('PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1: unknown protocol', v1('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1: an IPv6 address under TCP4', v1('PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n')],
  ['v1: a leading zero in the address', v1('PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n')],
  ['v1: an octet over 255', v1('PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n')],
  ['v1: port 65536', v1('PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n')],
  ['v1: a field missing', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')],
  ['v1: two spaces', v1('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')],
  ['v1: LF without CR', v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
  ['v1: a control byte', v1('PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n')],
];

describe('PROXY protocol: malformed headers', () => {
  it('each is closed without an answer, counted as malformed, and the guest never sees it', async () => {
    const before = p.http.server.stats()[0]!.accepted;
    for (const [what, bytes] of BAD) {
      const r = await exchange(p.http.port, [Buffer.concat([bytes, Buffer.from(GET_IP)])]);
      expect(r.ended, what).toBe('closed');
      expect(r.data.length, `${what}: no byte of an answer`).toBe(0);
    }
    expect(rejected(p.http.server).malformed).toBe(BAD.length);
    expect(p.http.server.stats()[0]!.accepted).toBe(before);
    await stillServes(p.http.port);
    expect(p.http.server.stats()[0]!.accepted).toBe(before + 1);
    await neighbourServes(p.neighbour.port);
    expect(p.http.server.stats()[0]!.restarts).toBe(0);
    // One warning per refusal (within the log rate), naming the reason.
    expect(p.http.logs.filter((e) => /PROXY protocol: .* malformed header/.test(e.message)).length).toBeGreaterThan(0);
  });

  it('v2 families that are not TCP (UDP, UNIX) are refused as unsupported', async () => {
    const before = rejected(p.http.server).unsupported ?? 0;
    for (const famProto of [0x12, 0x22, 0x31]) {
      const r = await exchange(p.http.port, [Buffer.concat([v2({ famProto }), Buffer.from(GET_IP)])]);
      expect(r.ended).toBe('closed');
      expect(r.data.length).toBe(0);
    }
    expect(rejected(p.http.server).unsupported).toBe(before + 3);
    await stillServes(p.http.port);
  });

  it('a v2 UNSPEC header keeps the real peer', async () => {
    const r = await exchange(p.http.port, [Buffer.concat([v2({ famProto: 0x00 }), Buffer.from(GET_IP)])]);
    expect(r.data.toString()).toMatch(/\r\n\r\n127\.0\.0\.1\n$/);
  });
});
