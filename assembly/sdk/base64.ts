// Base64 (RFC 4648 section 4: the standard alphabet, "=" padding).
//
// Encoding always pads. Decoding is strict about what a protocol field
// should contain: length a multiple of 4, alphabet characters only, "="
// only as the last one or two characters, no whitespace. It does accept
// non-zero bits in the padding's spare positions (RFC 4648 3.5 lets a
// decoder choose; rejecting them breaks interoperability for no gain).
//
// The raw forms work on memory (ptr, len) so protocol code can encode
// straight into an output buffer; the Uint8Array/string forms are for
// convenience.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const PAD: u8 = 61; // '='

// Character -> 6-bit value, 0xff for characters outside the alphabet.
const DECODE: StaticArray<u8> = buildDecodeTable();

function buildDecodeTable(): StaticArray<u8> {
  const t = new StaticArray<u8>(256);
  for (let i = 0; i < 256; i++) t[i] = 0xff;
  for (let i = 0; i < 64; i++) t[ALPHABET.charCodeAt(i)] = <u8>i;
  return t;
}

/** Characters `n` bytes encode to (padding included). */
export function base64EncodedLength(n: i32): i32 {
  return ((n + 2) / 3) * 4;
}

/** Encodes `len` bytes at `src` as ASCII at `dst` (base64EncodedLength(len) bytes). Returns that count. */
export function base64EncodeInto(src: usize, len: i32, dst: usize): i32 {
  const abc = changetype<usize>(ALPHABET); // UTF-16: character i at abc + 2i
  let o = dst;
  let i = 0;
  for (; i + 3 <= len; i += 3) {
    const v = (<u32>load<u8>(src + <usize>i) << 16) | (<u32>load<u8>(src + <usize>i + 1) << 8) | <u32>load<u8>(src + <usize>i + 2);
    store<u8>(o, load<u8>(abc + (<usize>(v >> 18) << 1)));
    store<u8>(o + 1, load<u8>(abc + (<usize>((v >> 12) & 63) << 1)));
    store<u8>(o + 2, load<u8>(abc + (<usize>((v >> 6) & 63) << 1)));
    store<u8>(o + 3, load<u8>(abc + (<usize>(v & 63) << 1)));
    o += 4;
  }
  const rest = len - i;
  if (rest > 0) {
    let v = <u32>load<u8>(src + <usize>i) << 16;
    if (rest == 2) v |= <u32>load<u8>(src + <usize>i + 1) << 8;
    store<u8>(o, load<u8>(abc + (<usize>(v >> 18) << 1)));
    store<u8>(o + 1, load<u8>(abc + (<usize>((v >> 12) & 63) << 1)));
    store<u8>(o + 2, rest == 2 ? load<u8>(abc + (<usize>((v >> 6) & 63) << 1)) : PAD);
    store<u8>(o + 3, PAD);
    o += 4;
  }
  return <i32>(o - dst);
}

/** `data` in base64. */
export function base64Encode(data: Uint8Array): string {
  const n = base64EncodedLength(data.length);
  const ascii = new Uint8Array(n);
  base64EncodeInto(data.dataStart, data.length, ascii.dataStart);
  return String.UTF8.decodeUnsafe(ascii.dataStart, <usize>n);
}

/**
 * Bytes the `len` characters at `src` decode to, or -1 when they are not
 * strict base64 (see the top of this file). Checks everything decodeInto does.
 */
export function base64DecodedLength(src: usize, len: i32): i32 {
  if (len % 4 != 0) return -1;
  let pad = 0;
  if (len > 0 && load<u8>(src + <usize>len - 1) == PAD) {
    pad = 1;
    if (load<u8>(src + <usize>len - 2) == PAD) pad = 2;
  }
  for (let i = 0; i < len - pad; i++) {
    if (DECODE[load<u8>(src + <usize>i)] == 0xff) return -1;
  }
  return (len / 4) * 3 - pad;
}

/**
 * Decodes the `len` characters at `src` into `dst` (base64DecodedLength
 * bytes). Returns the byte count, or -1 (nothing meaningful written) when
 * the input is not strict base64.
 */
export function base64DecodeInto(src: usize, len: i32, dst: usize): i32 {
  const n = base64DecodedLength(src, len);
  if (n < 0) return -1;
  let o: i32 = 0;
  for (let i = 0; i < len; i += 4) {
    const p = src + <usize>i;
    const c2 = load<u8>(p + 2);
    const c3 = load<u8>(p + 3);
    const v = (<u32>DECODE[load<u8>(p)] << 18) | (<u32>DECODE[load<u8>(p + 1)] << 12) |
      (c2 == PAD ? 0 : <u32>DECODE[c2] << 6) | (c3 == PAD ? 0 : <u32>DECODE[c3]);
    // Each group yields up to 3 bytes; the count says how many are real.
    const q = dst + <usize>o;
    if (o < n) store<u8>(q, <u8>(v >> 16));
    if (o + 1 < n) store<u8>(q + 1, <u8>(v >> 8));
    if (o + 2 < n) store<u8>(q + 2, <u8>v);
    o += 3;
  }
  return n;
}

/** The bytes `text` encodes, or null when it is not strict base64. */
export function base64Decode(text: string): Uint8Array | null {
  const ascii = String.UTF8.encode(text);
  const n = base64DecodedLength(changetype<usize>(ascii), ascii.byteLength);
  if (n < 0) return null;
  const out = new Uint8Array(n);
  base64DecodeInto(changetype<usize>(ascii), ascii.byteLength, out.dataStart);
  return out;
}
