// A growable byte queue: bytes are appended at the end and consumed from the
// front. Connections keep one for input (recv writes straight into its free
// space) and one for output (replies are appended, send reads straight from
// its unread bytes), so data crosses into and out of the guest with no copy
// beyond the parse.

const MIN_CAPACITY: i32 = 256;

/**
 * Bytes every ByteBuffer has allocated to grow, ever (a counter that only
 * rises): the Server reads how much it rose to decide when to look at free
 * memory again.
 */
export let bufferGrowth: u64 = 0;

export class ByteBuffer {
  private buf: usize;
  private cap: i32;
  private start: i32 = 0; // first unread byte
  private end: i32 = 0; // one past the last written byte

  /** A capacity of 0 allocates nothing until the first write. */
  constructor(capacity: i32 = 4096) {
    this.cap = capacity > 0 ? max(capacity, MIN_CAPACITY) : 0;
    this.buf = this.cap > 0 ? heap.alloc(<usize>this.cap) : 0;
    bufferGrowth += <u64>this.cap;
  }

  /** Unread bytes. */
  get length(): i32 { return this.end - this.start; }

  /** Address of the first unread byte. */
  get ptr(): usize { return this.buf + <usize>this.start; }

  /** The unread byte at `i` (no bounds check beyond an assert). */
  at(i: i32): u8 {
    assert(i >= 0 && i < this.length, "ByteBuffer index out of range");
    return load<u8>(this.buf + <usize>(this.start + i));
  }

  /** Drops `n` bytes from the front. */
  consume(n: i32): void {
    assert(n >= 0 && n <= this.length, "ByteBuffer consume past the end");
    this.start += n;
    if (this.start == this.end) { this.start = 0; this.end = 0; }
  }

  clear(): void { this.start = 0; this.end = 0; }

  /** Keeps the first `n` unread bytes, dropping what was written after them. */
  truncate(n: i32): void {
    assert(n >= 0 && n <= this.length, "ByteBuffer truncate past the end");
    this.end = this.start + n;
  }

  /**
   * Gives the memory back to the heap now. The buffer is then empty; using
   * it again allocates afresh. (The memory is not the garbage collector's:
   * without this it is never freed.)
   */
  release(): void {
    if (this.buf != 0) heap.free(this.buf);
    this.buf = 0;
    this.cap = 0;
    this.start = 0;
    this.end = 0;
  }

  /**
   * Makes room for at least `n` more bytes and returns where to write them
   * (then call `commit`). Moves unread bytes to the front or grows as needed.
   */
  reserve(n: i32): usize {
    if (this.cap - this.end < n) {
      const len = this.length;
      if (this.start > 0 && this.cap - len >= n) {
        memory.copy(this.buf, this.buf + <usize>this.start, <usize>len);
      } else {
        let cap = max(this.cap, MIN_CAPACITY);
        while (cap - len < n) cap <<= 1;
        if (this.buf != 0 && this.start == 0) {
          // In place when the allocator can extend the block (less to copy, less left in pieces).
          this.buf = heap.realloc(this.buf, <usize>cap);
        } else {
          const fresh = heap.alloc(<usize>cap);
          memory.copy(fresh, this.buf + <usize>this.start, <usize>len);
          if (this.buf != 0) heap.free(this.buf);
          this.buf = fresh;
        }
        bufferGrowth += <u64>cap;
        this.cap = cap;
      }
      this.start = 0;
      this.end = len;
    }
    return this.buf + <usize>this.end;
  }

  /** The new block `reserve(n)` would allocate, in bytes: 0 when it needs none. */
  growthFor(n: i32): i32 {
    const len = this.length;
    if (this.cap - this.end >= n || (this.start > 0 && this.cap - len >= n)) return 0;
    let cap = max(this.cap, MIN_CAPACITY);
    while (cap - len < n) cap <<= 1;
    return cap;
  }

  /** Bytes the buffer holds room for. */
  get capacity(): i32 { return this.cap; }

  /** Free space after the unread bytes without moving or growing. */
  get spare(): i32 { return this.cap - this.end; }

  /** Records `n` bytes written at the address `reserve` returned. */
  commit(n: i32): void {
    assert(n >= 0 && this.end + n <= this.cap, "ByteBuffer commit past its space");
    this.end += n;
  }

  writeBytes(ptr: usize, len: i32): void {
    memory.copy(this.reserve(len), ptr, <usize>len);
    this.end += len;
  }

  writeByte(b: u8): void {
    store<u8>(this.reserve(1), b);
    this.end += 1;
  }

  /** Appends a string as UTF-8 (ASCII protocol text in practice). */
  writeString(s: string): void {
    const n = String.UTF8.byteLength(s);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, this.reserve(n));
    this.end += n;
  }

  /** Appends a non-negative integer in decimal. */
  writeDecimal(v: u64): void {
    let digits = 1;
    for (let t = v; t >= 10; t /= 10) digits++;
    let p = this.reserve(digits) + <usize>digits;
    do {
      p--;
      store<u8>(p, <u8>(48 + v % 10));
      v /= 10;
    } while (v > 0);
    this.end += digits;
  }

  /** Appends a signed integer in decimal. */
  writeSigned(v: i64): void {
    if (v < 0) {
      this.writeByte(45); // '-'
      this.writeDecimal(<u64>(-(v + 1)) + 1);
    } else {
      this.writeDecimal(<u64>v);
    }
  }

  /** Index of the first `b` in the unread bytes at or after `from`, or -1. */
  indexOf(b: u8, from: i32 = 0): i32 {
    const p = this.ptr;
    for (let i = from; i < this.length; i++) if (load<u8>(p + <usize>i) == b) return i;
    return -1;
  }

  /** Index of the first "\r\n" at or after `from`, or -1. */
  indexOfCRLF(from: i32 = 0): i32 {
    const p = this.ptr;
    const last = this.length - 1;
    for (let i = from; i < last; i++) {
      if (load<u8>(p + <usize>i) == 13 && load<u8>(p + <usize>i + 1) == 10) return i;
    }
    return -1;
  }

  /** The unread bytes [from, from+len) as a string (UTF-8). */
  toString(from: i32 = 0, len: i32 = -1): string {
    const n = len < 0 ? this.length - from : len;
    return String.UTF8.decodeUnsafe(this.ptr + <usize>from, <usize>n);
  }
}
