/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and
 * 2), parsed from the bytes a connection has sent so far. Pure: no socket,
 * no allocation on the way to an answer but the address it carries.
 *
 * Version 1 is a text line, `PROXY TCP4|TCP6|UNKNOWN src dst sport dport\r\n`,
 * at most 107 bytes; version 2 a binary block, a 12-byte signature, a
 * version/command byte, a family/protocol byte, a 2-byte length and that
 * many bytes of addresses and TLVs. The two are told apart by their first
 * byte ('P' or '\r'), as HAProxy's `accept-proxy` does; anything else is
 * not a PROXY header at all.
 *
 * The caller (sandbox/instance-host.ts) reads a connection's bytes without
 * ever taking one past the header's end: what parseProxyHeader says it
 * still needs bounds the next read.
 */
import { SocketAddress } from '../backends/address.js';

/** Why a header was refused: the counters' reasons (STAT_PROXY_*). */
export const PROXY_REASONS = ['malformed', 'truncated', 'timeout', 'oversized', 'unsupported'] as const;
export type ProxyReason = (typeof PROXY_REASONS)[number];

/** Version 1: the longest line the specification allows, CRLF included. */
export const PROXY_V1_MAX_BYTES = 107;
/**
 * Version 2: the longest header accepted, TLVs included (16 fixed bytes and
 * 1008 of addresses and TLVs). The addresses alone take at most 216; the
 * rest leaves room for a proxy's TLVs (unique id, ALPN, authority, TLS
 * details). A length field past it is refused as oversized without waiting
 * for its bytes.
 */
export const PROXY_V2_MAX_BYTES = 1024;
/** The longest header of either version: the size of a connection's header buffer. */
export const PROXY_MAX_BYTES = PROXY_V2_MAX_BYTES;

const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V2_FIXED = 16;

/** What the bytes so far amount to. */
export type ProxyParse =
  /** A header, possibly: at most `upTo` more bytes may be read (none of them past its end), `peek` first to find the end (version 1). */
  | { readonly state: 'need'; readonly upTo: number; readonly peek: boolean }
  /**
   * A complete header of `length` bytes. `source`: the client's address it
   * carries; null to keep the connection's own (version 2 LOCAL, version 1
   * UNKNOWN, version 2 UNSPEC).
   */
  | { readonly state: 'done'; readonly length: number; readonly source: SocketAddress | null }
  | { readonly state: 'bad'; readonly reason: ProxyReason };

const bad = (reason: ProxyReason): ProxyParse => ({ state: 'bad', reason });

/**
 * Parses `bytes[0..n)`, the first bytes of a connection. For version 1 the
 * caller peeks: `n` may then reach past the header's end (the rest is the
 * client's first request), and `length` says where it ends.
 */
export function parseProxyHeader(bytes: Uint8Array, n: number): ProxyParse {
  if (n === 0) return { state: 'need', upTo: PROXY_MAX_BYTES, peek: true };
  if (bytes[0] === V1_PREFIX[0]) return parseV1(bytes, n);
  if (bytes[0] === V2_SIGNATURE[0]) return parseV2(bytes, n);
  return bad('malformed');
}

function parseV1(bytes: Uint8Array, n: number): ProxyParse {
  const end = Math.min(n, PROXY_V1_MAX_BYTES);
  for (let i = 0; i < Math.min(end, V1_PREFIX.length); i++) if (bytes[i] !== V1_PREFIX[i]) return bad('malformed');
  let lf = -1;
  for (let i = 0; i < end; i++) {
    const b = bytes[i]!;
    if (b === 0x0a) {
      lf = i;
      break;
    }
    // Printable ASCII, and the CR only right before the LF.
    if (b === 0x0d ? i + 1 < end && bytes[i + 1] !== 0x0a : b < 0x20 || b > 0x7e) return bad('malformed');
  }
  if (lf < 0) return end >= PROXY_V1_MAX_BYTES ? bad('oversized') : { state: 'need', upTo: PROXY_V1_MAX_BYTES - n, peek: true };
  if (lf === 0 || bytes[lf - 1] !== 0x0d) return bad('malformed');
  const line = String.fromCharCode(...bytes.subarray(0, lf - 1));
  const length = lf + 1;
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { state: 'done', length, source: null };
  if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return bad('malformed');
  const v6 = parts[1] === 'TCP6';
  const src = v1Address(parts[2]!, v6);
  const dst = v1Address(parts[3]!, v6);
  const sport = v1Port(parts[4]!);
  const dport = v1Port(parts[5]!);
  if (!src || !dst || sport < 0 || dport < 0) return bad('malformed');
  src.port = sport;
  return { state: 'done', length, source: src };
}

function v1Address(text: string, v6: boolean): SocketAddress | null {
  if (!v6) {
    // Dotted quad, decimal, no leading zeros (which some parsers read as octal).
    if (!/^(0|[1-9]\d{0,2})(\.(0|[1-9]\d{0,2})){3}$/.test(text)) return null;
    const a = SocketAddress.parse(`${text}:0`);
    return a && !a.v6 ? a : null;
  }
  // The embedded IPv4 form (`::ffff:192.0.2.1`, what inet_ntop writes for a
  // v4-mapped address) as two hex groups: SocketAddress.parse reads only those.
  const embedded = /^([0-9a-fA-F:]*:)((?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3})$/.exec(text);
  if (embedded) {
    const q = embedded[2]!.split('.').map(Number);
    if (q.some((b) => b > 255)) return null;
    text = `${embedded[1]}${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  if (!/^[0-9a-fA-F:]+$/.test(text)) return null;
  const a = SocketAddress.parse(`[${text}]:0`);
  return a?.v6 ? a : null;
}

function v1Port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) return -1;
  const p = Number(text);
  return p <= 65535 ? p : -1;
}

function parseV2(bytes: Uint8Array, n: number): ProxyParse {
  for (let i = 0; i < Math.min(n, V2_SIGNATURE.length); i++) if (bytes[i] !== V2_SIGNATURE[i]) return bad('malformed');
  if (n > V2_SIGNATURE.length) {
    const verCmd = bytes[12]!;
    if (verCmd >> 4 !== 2 || (verCmd & 0xf) > 1) return bad('malformed');
  }
  if (n < V2_FIXED) return { state: 'need', upTo: V2_FIXED - n, peek: false };
  const length = V2_FIXED + ((bytes[14]! << 8) | bytes[15]!);
  if (length > PROXY_V2_MAX_BYTES) return bad('oversized');
  if (n < length) return { state: 'need', upTo: length - n, peek: false };
  // LOCAL: the proxy's own connection (a health check): the real peer stands.
  if ((bytes[12]! & 0xf) === 0) return { state: 'done', length, source: null };
  const famProto = bytes[13]!;
  const body = length - V2_FIXED;
  const src = new SocketAddress();
  if (famProto === 0x11) {
    // TCP over IPv4: source, destination (4 bytes each), source port, destination port.
    if (body < 12) return bad('malformed');
    src.v6 = false;
    for (let i = 0; i < 4; i++) src.groups[i] = bytes[16 + i]!;
    src.port = (bytes[24]! << 8) | bytes[25]!;
    return { state: 'done', length, source: src };
  }
  if (famProto === 0x21) {
    // TCP over IPv6: 16 bytes each, then the ports.
    if (body < 36) return bad('malformed');
    src.v6 = true;
    for (let i = 0; i < 8; i++) src.groups[i] = (bytes[16 + 2 * i]! << 8) | bytes[17 + 2 * i]!;
    src.port = (bytes[48]! << 8) | bytes[49]!;
    return { state: 'done', length, source: src };
  }
  // UNSPEC: the proxy knows no address to give (the specification: keep the connection's own).
  if (famProto === 0x00) return { state: 'done', length, source: null };
  // Datagrams, UNIX sockets, families the specification does not define: not a TCP client this listener can name.
  return bad('unsupported');
}
