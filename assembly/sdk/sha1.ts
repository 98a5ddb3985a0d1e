// SHA-1 (FIPS 180-4), streaming. Protocols still need it for handshakes
// (the WebSocket accept key, RFC 6455) even though it is broken for
// signatures: never use it where collision resistance matters.
//
//   const h = new Sha1();
//   h.update(keyPtr, keyLen);
//   h.update(guidPtr, guidLen);
//   h.finish(out);            // 20 bytes at `out`; call reset() to reuse
//
// Input can arrive in pieces of any size; only a partial 64-byte block is
// kept between calls, so hashing allocates nothing after construction.

/** Bytes in a SHA-1 digest. */
export const SHA1_DIGEST_SIZE: i32 = 20;

const BLOCK: i32 = 64;

export class Sha1 {
  private h0: u32 = 0;
  private h1: u32 = 0;
  private h2: u32 = 0;
  private h3: u32 = 0;
  private h4: u32 = 0;
  private block: StaticArray<u8> = new StaticArray<u8>(BLOCK);
  private blockLen: i32 = 0; // bytes waiting in `block`
  private total: u64 = 0; // bytes hashed so far, for the final length field
  private w: StaticArray<u32> = new StaticArray<u32>(80);

  constructor() {
    this.reset();
  }

  /** Starts a new hash (after finish, or to abandon one). */
  reset(): void {
    this.h0 = 0x67452301;
    this.h1 = 0xefcdab89;
    this.h2 = 0x98badcfe;
    this.h3 = 0x10325476;
    this.h4 = 0xc3d2e1f0;
    this.blockLen = 0;
    this.total = 0;
  }

  /** Hashes `len` bytes at `ptr`. */
  update(ptr: usize, len: i32): void {
    this.total += <u64>len;
    let off = 0;
    // Top up a partial block first; whole blocks are then hashed in place.
    if (this.blockLen > 0) {
      const n = min(BLOCK - this.blockLen, len);
      memory.copy(changetype<usize>(this.block) + <usize>this.blockLen, ptr, <usize>n);
      this.blockLen += n;
      off = n;
      if (this.blockLen < BLOCK) return;
      this.compress(changetype<usize>(this.block));
      this.blockLen = 0;
    }
    for (; off + BLOCK <= len; off += BLOCK) this.compress(ptr + <usize>off);
    if (off < len) {
      memory.copy(changetype<usize>(this.block), ptr + <usize>off, <usize>(len - off));
      this.blockLen = len - off;
    }
  }

  /** Hashes the bytes of `data`. */
  updateBytes(data: Uint8Array): void {
    this.update(data.dataStart, data.length);
  }

  /** Pads, finishes and writes the 20-byte digest at `out`. Call reset() before reusing. */
  finish(out: usize): void {
    const bits = this.total << 3;
    const b = changetype<usize>(this.block);
    store<u8>(b + <usize>this.blockLen, 0x80);
    this.blockLen++;
    // The 8-byte length must fit after the padding: else pad out this block.
    if (this.blockLen > BLOCK - 8) {
      memory.fill(b + <usize>this.blockLen, 0, <usize>(BLOCK - this.blockLen));
      this.compress(b);
      this.blockLen = 0;
    }
    memory.fill(b + <usize>this.blockLen, 0, <usize>(BLOCK - 8 - this.blockLen));
    store<u64>(b + <usize>(BLOCK - 8), bswap<u64>(bits));
    this.compress(b);
    this.blockLen = 0;
    store<u32>(out, bswap<u32>(this.h0));
    store<u32>(out + 4, bswap<u32>(this.h1));
    store<u32>(out + 8, bswap<u32>(this.h2));
    store<u32>(out + 12, bswap<u32>(this.h3));
    store<u32>(out + 16, bswap<u32>(this.h4));
  }

  // One 64-byte block at `p`.
  private compress(p: usize): void {
    const w = changetype<usize>(this.w);
    for (let i: usize = 0; i < 16; i++) store<u32>(w + (i << 2), bswap<u32>(load<u32>(p + (i << 2))));
    for (let i: usize = 16; i < 80; i++) {
      const x = load<u32>(w + ((i - 3) << 2)) ^ load<u32>(w + ((i - 8) << 2)) ^
        load<u32>(w + ((i - 14) << 2)) ^ load<u32>(w + ((i - 16) << 2));
      store<u32>(w + (i << 2), rotl<u32>(x, 1));
    }
    let a = this.h0, b = this.h1, c = this.h2, d = this.h3, e = this.h4;
    for (let i: usize = 0; i < 80; i++) {
      let f: u32, k: u32;
      if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
      else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
      else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
      else { f = b ^ c ^ d; k = 0xca62c1d6; }
      const t = rotl<u32>(a, 5) + f + e + k + load<u32>(w + (i << 2));
      e = d;
      d = c;
      c = rotl<u32>(b, 30);
      b = a;
      a = t;
    }
    this.h0 += a;
    this.h1 += b;
    this.h2 += c;
    this.h3 += d;
    this.h4 += e;
  }
}

/** The SHA-1 digest of `data` (20 bytes). */
export function sha1(data: Uint8Array): Uint8Array {
  const h = new Sha1();
  h.updateBytes(data);
  const out = new Uint8Array(SHA1_DIGEST_SIZE);
  h.finish(out.dataStart);
  return out;
}
