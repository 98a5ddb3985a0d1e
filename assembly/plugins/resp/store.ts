// The keyspace: a binary-safe hash table in which every byte is accounted.
//
// Entries, values and the bucket array are blocks taken straight from the
// allocator (heap.alloc), not garbage-collected objects. A write frees what it
// replaces at once, so `used` is exact: the sum of the allocator's own block
// sizes (see blockSize). That is what lets the plugin promise to stay inside
// its memory cap: a write is refused before it is made (see wouldFit), and
// nothing is left to a collector that might run late. It also keeps the
// collector's work independent of the number of keys: there is nothing here
// for it to trace.
//
// Keys with a deadline are also listed in `volatile`, an array of entries
// that active expiry samples from at random (Redis's db->expires). It always
// has room for every key, so giving a key a deadline never allocates: every
// allocation happens in a write that was checked against the budget first
// (see growthCost), and after each command `used` is within it.

import { Clock } from "./clock";

// The allocator (AssemblyScript's TLSF) keeps each block's payload size in
// the 4 bytes before the block, with two flag bits at the bottom. Reading it
// back makes the accounting exact: rounding to 16 bytes, the minimum block
// and the slack a split leaves behind are all counted.
const BLOCK_HEADER: usize = 4;
const SIZE_MASK: u32 = ~3;

/** Bytes a block returned by heap.alloc can hold (at least what was asked). */
function payloadSize(p: usize): usize {
  return <usize>(load<u32>(p - BLOCK_HEADER) & SIZE_MASK);
}

/** Bytes a block takes from the heap, its header included. */
function blockSize(p: usize): usize {
  return payloadSize(p) + BLOCK_HEADER;
}

/** At most what a request of `n` bytes will take (for checks made before allocating). */
export function footprint(n: usize): usize {
  if (n == 0) return 0; // nothing is allocated
  // 16-byte rounding, a 32-byte minimum, and up to 28 bytes a split may leave attached.
  return ((n + BLOCK_HEADER + 15) & ~15) + 32;
}

// log2 of a pointer's size: the shift from an index to a byte offset.
const PTR_SHIFT: usize = alignof<usize>();

/** expiresAt of a key without a deadline. */
export const PERSISTENT: i64 = 0;

const MIN_BUCKETS: u32 = 16;

/**
 * One key. The struct and the key's bytes share one block: the key follows
 * the fields (keyPtr). The value has a block of its own, because it changes.
 */
@unmanaged
export class Entry {
  /** The next entry in the same bucket. */
  next: Entry | null;
  hash: u32;
  keyLen: i32;
  /** The value's block (0 for an empty value) and its length and capacity. */
  value: usize;
  valueLen: i32;
  valueCap: i32;
  /** Monotonic milliseconds at which the key expires; PERSISTENT for never. */
  expiresAt: i64;
  /** Index in Store's volatile list while the key has a deadline, else -1. */
  volatileSlot: i32;

  get keyPtr(): usize {
    return changetype<usize>(this) + offsetof<Entry>();
  }
}

export class Store {
  /** Keys in the table (expired ones included until they are deleted). */
  count: i32 = 0;
  /** Bytes of every block the store holds: entries, values, buckets, the volatile list. */
  used: usize = 0;
  /** Keys with a deadline. */
  volatileCount: i32 = 0;
  /** Keys deleted because their deadline passed (for INFO). */
  expiredKeys: i64 = 0;

  private buckets: usize = 0; // Entry pointers
  private mask: u32 = 0; // bucket count - 1 (a power of two)
  private volatile: usize = 0; // Entry pointers, volatileCount of them
  private volatileCap: i32 = 0;

  /**
   * `budget` is maxmemory: callers refuse writes that would take `used` past
   * it (wouldFit). `seed` keys the hash: with a secret seed a client cannot
   * easily compute a set of keys that all land in one bucket.
   */
  constructor(readonly budget: usize, private seed: u32) {
    this.allocateBuckets(MIN_BUCKETS);
  }

  /** Would `extra` more bytes keep the store within its budget? */
  wouldFit(extra: usize): bool {
    return this.used + extra <= this.budget;
  }

  /** At most what storing a new key of `keyLen` and a value of `valueLen` bytes costs. */
  static cost(keyLen: i32, valueLen: i32): usize {
    return footprint(offsetof<Entry>() + <usize>keyLen) + footprint(<usize>valueLen);
  }

  /**
   * What the volatile list must grow by before `newKeys` more keys fit (its
   * room is taken when a key is added). The bucket array grows only when
   * the budget allows (see resize), so it is not part of this.
   */
  growthCost(newKeys: i32): usize {
    const needed = this.count + newKeys;
    if (needed <= this.volatileCap) return 0;
    return footprint(<usize>grownCapacity(this.volatileCap, needed) << PTR_SHIFT);
  }

  /**
   * The live entry for a key, or null. A key past its deadline is deleted
   * here, when it is touched: Redis's lazy expiry (expiry.ts adds the active
   * half).
   */
  lookup(key: usize, keyLen: i32, clock: Clock): Entry | null {
    const e = this.find(key, keyLen);
    if (e !== null && e.expiresAt != PERSISTENT && clock.now() > e.expiresAt) {
      this.remove(e);
      this.expiredKeys++;
      return null;
    }
    return e;
  }

  /** The entry for a key, expired or not. */
  find(key: usize, keyLen: i32): Entry | null {
    const h = hashBytes(key, keyLen, this.seed);
    let e = load<Entry | null>(this.bucketAddr(h));
    while (e !== null) {
      if (e.hash == h && e.keyLen == keyLen && memory.compare(e.keyPtr, key, <usize>keyLen) == 0) return e;
      e = e.next;
    }
    return null;
  }

  /** Adds a key that is not in the table, with an empty value and no deadline. */
  insert(key: usize, keyLen: i32): Entry {
    const h = hashBytes(key, keyLen, this.seed);
    const e = changetype<Entry>(this.allocate(offsetof<Entry>() + <usize>keyLen));
    e.hash = h;
    e.keyLen = keyLen;
    e.value = 0;
    e.valueLen = 0;
    e.valueCap = 0;
    e.expiresAt = PERSISTENT;
    e.volatileSlot = -1;
    memory.copy(e.keyPtr, key, <usize>keyLen);
    const slot = this.bucketAddr(h);
    e.next = load<Entry | null>(slot);
    store<Entry>(slot, e);
    this.count++;
    if (this.count > this.volatileCap) this.growVolatile(this.count);
    if (<u32>this.count > this.mask + 1) this.resize((this.mask + 1) << 1);
    return e;
  }

  /** Replaces e's value with the `len` bytes at `src`. */
  setValue(e: Entry, src: usize, len: i32): void {
    // Keep the block when the new value fits without wasting much of it: a
    // counter or a fixed-size value is then rewritten in place, with no
    // allocator call at all.
    const cap = e.valueCap;
    if (len > cap || cap - len > max(len, 64)) {
      if (e.value != 0) this.release(e.value);
      if (len == 0) {
        e.value = 0;
        e.valueCap = 0;
      } else {
        e.value = this.allocate(<usize>len);
        e.valueCap = <i32>payloadSize(e.value);
      }
    }
    memory.copy(e.value, src, <usize>len);
    e.valueLen = len;
  }

  /** Gives e a deadline (monotonic ms), or takes it away with PERSISTENT. */
  setExpiry(e: Entry, at: i64): void {
    if (at == PERSISTENT) {
      if (e.volatileSlot >= 0) this.unlistVolatile(e);
    } else if (e.volatileSlot < 0) {
      this.listVolatile(e);
    }
    e.expiresAt = at;
  }

  /** Removes e from the table and frees it; e must not be used afterwards. */
  remove(e: Entry): void {
    let slot = this.bucketAddr(e.hash);
    let cur = load<Entry | null>(slot);
    while (cur !== e) {
      slot = changetype<usize>(cur) + offsetof<Entry>("next");
      cur = load<Entry | null>(slot);
    }
    store<Entry | null>(slot, e.next);
    if (e.volatileSlot >= 0) this.unlistVolatile(e);
    this.freeEntry(e);
    this.count--;
    // Shrink a table that emptied out, so a burst of keys does not pin its buckets.
    if (this.mask + 1 > MIN_BUCKETS && <u32>this.count * 8 < this.mask + 1) this.resize((this.mask + 1) >> 1);
  }

  /** Removes every key. */
  clear(): void {
    for (let b: u32 = 0; b <= this.mask; b++) {
      let e = load<Entry | null>(this.buckets + (<usize>b << PTR_SHIFT));
      while (e !== null) {
        const next = e.next;
        this.freeEntry(e);
        e = next;
      }
    }
    this.release(this.buckets);
    if (this.volatile != 0) this.release(this.volatile);
    this.volatile = 0;
    this.volatileCap = 0;
    this.volatileCount = 0;
    this.count = 0;
    this.allocateBuckets(MIN_BUCKETS);
  }

  /** The i-th key with a deadline, 0 <= i < volatileCount (for sampling). */
  volatileAt(i: i32): Entry {
    return load<Entry>(this.volatile + (<usize>i << PTR_SHIFT));
  }

  // Every block the store holds is taken and given back through these two,
  // so `used` cannot drift.
  private allocate(n: usize): usize {
    const p = heap.alloc(n);
    this.used += blockSize(p);
    return p;
  }

  private release(p: usize): void {
    this.used -= blockSize(p);
    heap.free(p);
  }

  private freeEntry(e: Entry): void {
    if (e.value != 0) this.release(e.value);
    this.release(changetype<usize>(e));
  }

  private bucketAddr(h: u32): usize {
    return this.buckets + (<usize>(h & this.mask) << PTR_SHIFT);
  }

  private allocateBuckets(n: u32): void {
    const bytes = <usize>n << PTR_SHIFT;
    this.buckets = this.allocate(bytes);
    memory.fill(this.buckets, 0, bytes);
    this.mask = n - 1;
  }

  // Rehashes into `n` buckets at once. A table the budget allows is rehashed
  // in milliseconds, well inside the CPU budget between two waits, so Redis's
  // incremental rehashing is not needed here. Growth is skipped when the new
  // array would not fit the budget: chains get longer, nothing fails.
  private resize(n: u32): void {
    if (n > this.mask + 1 && !this.wouldFit(footprint(<usize>n << PTR_SHIFT))) return;
    const oldBuckets = this.buckets;
    const oldCount = this.mask + 1;
    this.allocateBuckets(n);
    for (let b: u32 = 0; b < oldCount; b++) {
      let e = load<Entry | null>(oldBuckets + (<usize>b << PTR_SHIFT));
      while (e !== null) {
        const next = e.next;
        const slot = this.bucketAddr(e.hash);
        e.next = load<Entry | null>(slot);
        store<Entry>(slot, e);
        e = next;
      }
    }
    this.release(oldBuckets);
  }

  private growVolatile(needed: i32): void {
    const cap = grownCapacity(this.volatileCap, needed);
    const grown = this.allocate(<usize>cap << PTR_SHIFT);
    if (this.volatile != 0) {
      memory.copy(grown, this.volatile, <usize>this.volatileCount << PTR_SHIFT);
      this.release(this.volatile);
    }
    this.volatile = grown;
    this.volatileCap = cap;
  }

  // There is room: the list has a slot for every key (insert grows it).
  private listVolatile(e: Entry): void {
    e.volatileSlot = this.volatileCount;
    store<Entry>(this.volatile + (<usize>this.volatileCount << PTR_SHIFT), e);
    this.volatileCount++;
  }

  // Swap-remove: the last listed entry takes e's slot.
  private unlistVolatile(e: Entry): void {
    const last = this.volatileAt(this.volatileCount - 1);
    store<Entry>(this.volatile + (<usize>e.volatileSlot << PTR_SHIFT), last);
    last.volatileSlot = e.volatileSlot;
    e.volatileSlot = -1;
    this.volatileCount--;
  }
}

// Capacities double, from 16.
function grownCapacity(cap: i32, needed: i32): i32 {
  let n = max(cap, 16);
  while (n < needed) n <<= 1;
  return n;
}

/**
 * MurmurHash3 (x86, 32-bit) of `len` bytes at `p`: fast on short keys, good
 * distribution, seeded. (Redis uses SipHash, which resists crafted collisions
 * even from a client that can time the server; a random seed is the cheaper
 * half of that protection.)
 */
export function hashBytes(p: usize, len: i32, seed: u32): u32 {
  const c1: u32 = 0xcc9e2d51;
  const c2: u32 = 0x1b873593;
  let h = seed;
  const blocks = len >> 2;
  for (let i = 0; i < blocks; i++) {
    let k = load<u32>(p + (<usize>i << 2));
    k *= c1;
    k = rotl<u32>(k, 15);
    k *= c2;
    h ^= k;
    h = rotl<u32>(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  const tail = p + (<usize>blocks << 2);
  let k: u32 = 0;
  switch (len & 3) {
    case 3: k ^= <u32>load<u8>(tail, 2) << 16; // fall through
    case 2: k ^= <u32>load<u8>(tail, 1) << 8; // fall through
    case 1: {
      k ^= <u32>load<u8>(tail);
      k *= c1;
      k = rotl<u32>(k, 15);
      k *= c2;
      h ^= k;
    }
  }
  h ^= <u32>len;
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}
