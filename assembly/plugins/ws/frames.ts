// The WebSocket frame format (RFC 6455 section 5): reading the header of a
// client frame, writing the header of a server frame, unmasking.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-------+-+-------------+-------------------------------+
//  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
//  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
//  | |1|2|3|       |K|             |                               |
//  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//  |     Extended payload length continued, if payload len == 127  |
//  + - - - - - - - - - - - - - - - +-------------------------------+
//  |                               | Masking-key, if MASK set to 1 |
//  +-------------------------------+-------------------------------+
//  | Masking-key (continued)       |          Payload Data         |
//  +-------------------------------- - - - - - - - - - - - - - - - +

export namespace Opcode {
  export const CONTINUATION: u8 = 0;
  export const TEXT: u8 = 1;
  export const BINARY: u8 = 2;
  export const CLOSE: u8 = 8;
  export const PING: u8 = 9;
  export const PONG: u8 = 10;
}

/** Close status codes this server sends (RFC 6455 7.4.1 and the IANA registry). */
export namespace CloseCode {
  export const NORMAL: u16 = 1000;
  export const PROTOCOL_ERROR: u16 = 1002;
  /** Text that is not UTF-8 (a text message or a close reason). */
  export const INVALID_PAYLOAD: u16 = 1007;
  /** A reader too slow for the room. */
  export const POLICY: u16 = 1008;
  export const TOO_BIG: u16 = 1009;
  /** The server's buffers are full for now. */
  export const TRY_AGAIN_LATER: u16 = 1013;
}

/** Longest header of a client frame: 2 + 8 (length) + 4 (mask). */
export const MAX_CLIENT_HEADER: i32 = 14;
/** Longest header of a server frame (never masked). */
export const MAX_SERVER_HEADER: i32 = 10;
/** Control frames carry at most this much (RFC 6455 5.5). */
export const MAX_CONTROL_PAYLOAD: i32 = 125;

/** The fields of one client frame header. */
export class FrameHeader {
  fin: bool = false;
  opcode: u8 = 0;
  length: u64 = 0;
  /** The masking key as four bytes in memory order (little-endian u32). */
  mask: u32 = 0;
}

export function isControl(opcode: u8): bool {
  return (opcode & 8) != 0;
}

/**
 * Reads the header of a client frame from the `available` bytes at `p`.
 * Returns the header's size in bytes, 0 when more bytes are needed, or a
 * negative close code when the header alone breaks the protocol.
 *
 * The size of a data frame is the caller's to judge (it knows the message
 * so far); everything else a header can get wrong is judged here.
 */
export function readHeader(p: usize, available: i32, h: FrameHeader): i32 {
  if (available < 2) return 0;
  const b0 = load<u8>(p);
  const b1 = load<u8>(p + 1);
  h.fin = (b0 & 0x80) != 0;
  h.opcode = b0 & 0x0f;
  // No extension is ever negotiated, so no reserved bit may be set.
  if ((b0 & 0x70) != 0) return violation(CloseCode.PROTOCOL_ERROR);
  const op = h.opcode;
  if (op != Opcode.CONTINUATION && op != Opcode.TEXT && op != Opcode.BINARY &&
      op != Opcode.CLOSE && op != Opcode.PING && op != Opcode.PONG) {
    return violation(CloseCode.PROTOCOL_ERROR);
  }
  // Clients must mask every frame (RFC 6455 5.1).
  if ((b1 & 0x80) == 0) return violation(CloseCode.PROTOCOL_ERROR);
  let size = 2;
  let len = <u64>(b1 & 0x7f);
  if (len == 126) {
    if (available < 4) return 0;
    len = <u64>bswap<u16>(load<u16>(p + 2));
    size = 4;
  } else if (len == 127) {
    if (available < 10) return 0;
    len = bswap<u64>(load<u64>(p + 2));
    if ((len >> 63) != 0) return violation(CloseCode.PROTOCOL_ERROR); // the top bit must be 0
    size = 10;
  }
  if (isControl(op) && (!h.fin || len > <u64>MAX_CONTROL_PAYLOAD)) return violation(CloseCode.PROTOCOL_ERROR);
  if (available < size + 4) return 0;
  h.length = len;
  h.mask = load<u32>(p + <usize>size);
  return size + 4;
}

// readHeader's answer for a header that breaks the protocol. (The cast
// matters: negating a u16 wraps around to a large positive u16.)
function violation(code: u16): i32 {
  return -<i32>code;
}

/** Bytes of the header of a server frame carrying `len` bytes. */
export function serverHeaderSize(len: i32): i32 {
  return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
}

/** Writes the header of an unfragmented, unmasked server frame at `p`; returns its size. */
export function writeHeader(p: usize, opcode: u8, len: i32): i32 {
  store<u8>(p, 0x80 | opcode); // FIN: this server never fragments what it sends
  if (len < 126) {
    store<u8>(p + 1, <u8>len);
    return 2;
  }
  if (len <= 0xffff) {
    store<u8>(p + 1, 126);
    store<u16>(p + 2, bswap<u16>(<u16>len));
    return 4;
  }
  store<u8>(p + 1, 127);
  store<u64>(p + 2, bswap<u64>(<u64>len));
  return 10;
}

/**
 * Copies `len` masked bytes from `src` to `dst` (which may be the same
 * place), unmasking them. `offset` is how far into the frame's payload
 * `src` starts: the key repeats every four bytes of the whole payload, so
 * a payload read in pieces unmasks piece by piece.
 */
export function unmask(dst: usize, src: usize, len: i32, mask: u32, offset: u64): void {
  // Rotate the key so that its byte for payload position `offset` comes first.
  const k = rotr<u32>(mask, <u32>(offset & 3) << 3);
  const k8 = (<u64>k << 32) | <u64>k;
  let i = 0;
  for (; i + 8 <= len; i += 8) store<u64>(dst + <usize>i, load<u64>(src + <usize>i) ^ k8);
  for (; i < len; i++) store<u8>(dst + <usize>i, load<u8>(src + <usize>i) ^ <u8>(k >> ((<u32>i & 3) << 3)));
}

/**
 * Whether a client may send `code` in a close frame (RFC 6455 7.4): the
 * defined codes except those reserved for reporting (1005, 1006, 1015),
 * and the ranges for libraries and applications (3000-4999).
 */
export function isValidCloseCode(code: u32): bool {
  if (code >= 3000 && code <= 4999) return true;
  if (code < 1000 || code > 1014) return false;
  return code != 1004 && code != 1005 && code != 1006;
}
