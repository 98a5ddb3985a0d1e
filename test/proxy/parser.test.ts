/**
 * The PROXY protocol header parser (host/sandbox/proxy-header.ts) on its
 * own: what it asks to read next never reaches past a header's end, every
 * prefix of a valid header asks for more, and it answers the carried
 * address (or null: keep the socket's own).
 */
import { describe, it, expect } from 'vitest';
import { PROXY_V1_MAX_BYTES, PROXY_V2_MAX_BYTES, parseProxyHeader } from '../../dist/host/sandbox/proxy-header.js';
import { v1, v2, tlv } from './proxy.js';

const parse = (b: Buffer) => parseProxyHeader(new Uint8Array(b), b.length);

describe('PROXY header parser', () => {
  const valid: [string, Buffer, string | null][] = [
    ['v1 TCP4', v1('PROXY TCP4 203.0.113.7 192.0.2.1 51234 80\r\n'), '203.0.113.7:51234'],
    ['v1 TCP6', v1('PROXY TCP6 2001:db8::7 ::1 1 65535\r\n'), '[2001:db8::7]:1'],
    [
      'v1 TCP6, a v4-mapped source in the embedded IPv4 form',
      v1('PROXY TCP6 ::ffff:192.0.2.33 ::ffff:10.0.0.1 4000 80\r\n'),
      '[::ffff:c000:221]:4000',
    ],
    ['v1 UNKNOWN', v1('PROXY UNKNOWN\r\n'), null],
    ['v1 UNKNOWN with addresses', v1('PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n'), null],
    ['v2 IPv4', v2({ src: '198.51.100.23', sport: 4242 }), '198.51.100.23:4242'],
    ['v2 IPv6', v2({ src: '2001:db8::42', sport: 1 }), '[2001:db8::42]:1'],
    ['v2 IPv4 with TLVs', v2({ src: '10.1.2.3', tlvs: tlv(0x20, Buffer.alloc(40)) }), '10.1.2.3:51234'],
    ['v2 LOCAL', v2({ command: 'LOCAL' }), null],
    ['v2 UNSPEC', v2({ famProto: 0 }), null],
  ];

  for (const [what, header, source] of valid) {
    it(`${what}: done at its exact length, with the request after it untouched`, () => {
      const withRequest = Buffer.concat([header, Buffer.from('GET / HTTP/1.1\r\n\r\n')]);
      const r = parse(withRequest);
      // v2 is read exactly (never peeked past): with the request appended it is still done at the header's length.
      expect(r).toMatchObject({ state: 'done', length: header.length });
      if (r.state === 'done') expect(r.source === null ? null : String(r.source)).toBe(source);
    });

    it(`${what}: every shorter prefix asks for more, never past the end`, () => {
      for (let n = 0; n < header.length; n++) {
        const r = parse(header.subarray(0, n));
        expect(r.state, `prefix ${n}`).toBe('need');
        if (r.state === 'need' && !r.peek) expect(n + r.upTo, `prefix ${n}`).toBeLessThanOrEqual(header.length);
      }
    });
  }

  it('refuses at the first wrong byte, without waiting for more', () => {
    expect(parse(Buffer.from('G'))).toEqual({ state: 'bad', reason: 'malformed' });
    expect(parse(Buffer.from('PRO '))).toEqual({ state: 'bad', reason: 'malformed' });
    expect(parse(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01]))).toEqual({ state: 'bad', reason: 'malformed' });
    expect(parse(Buffer.concat([v2({}).subarray(0, 12), Buffer.from([0x31])]))).toEqual({ state: 'bad', reason: 'malformed' });
  });

  it('bounds: v1 at 107 bytes, v2 at PROXY_V2_MAX_BYTES', () => {
    expect(PROXY_V1_MAX_BYTES).toBe(107);
    expect(parse(v1(`PROXY UNKNOWN ${'a'.repeat(PROXY_V1_MAX_BYTES - 14)}`))).toEqual({ state: 'bad', reason: 'oversized' });
    expect(parse(v1(`PROXY UNKNOWN ${'a'.repeat(PROXY_V1_MAX_BYTES - 16)}\r\n`))).toMatchObject({ state: 'done', length: 107 });
    expect(parse(v2({ length: PROXY_V2_MAX_BYTES - 15 }).subarray(0, 16))).toEqual({ state: 'bad', reason: 'oversized' });
    expect(parse(v2({ length: PROXY_V2_MAX_BYTES - 16 }).subarray(0, 16))).toMatchObject({ state: 'need', upTo: PROXY_V2_MAX_BYTES - 16 });
  });

  it('v1 TCP6 addresses: the embedded IPv4 form read as its two groups; a bad quad, or IPv4 alone, refused', () => {
    const source = (line: string) => {
      const r = parse(v1(`${line}\r\n`));
      return r.state === 'done' ? String(r.source) : r;
    };
    expect(source('PROXY TCP6 ::1.2.3.4 ::1 1 2')).toBe('[::102:304]:1');
    expect(source('PROXY TCP6 1:2:3:4:5:6:1.2.3.4 ::1 1 2')).toBe('[1:2:3:4:5:6:102:304]:1');
    for (const bad of ['::ffff:192.0.2.333', '::ffff:192.0.02.3', '::ffff:1.2.3', '1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '::ffff:1.2.3.4.5']) {
      expect(source(`PROXY TCP6 ${bad} ::1 1 2`), bad).toEqual({ state: 'bad', reason: 'malformed' });
    }
  });

  it('v2 PROXY over UDP or UNIX sockets is unsupported; LOCAL over them is fine', () => {
    for (const famProto of [0x12, 0x22, 0x31, 0x32, 0x41]) {
      expect(parse(v2({ famProto }))).toEqual({ state: 'bad', reason: 'unsupported' });
      expect(parse(v2({ famProto, command: 'LOCAL' }))).toMatchObject({ state: 'done', source: null });
    }
  });
});
