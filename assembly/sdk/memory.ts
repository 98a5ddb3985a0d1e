// The instance's memory: its cap (from the host, wasmux:plugin/limits), what
// it has grown to, and how much of that the allocator has free.
//
// Linear memory only grows: once a burst has made it large, its size says
// nothing about what is in use. What is free inside is what AssemblyScript's
// allocator (TLSF) holds on its free lists, which `freeInHeap` sums. That
// reads the allocator's own structure, so it is exact but not free of cost
// (one step per free block): the Server calls it only when memory has grown
// near the cap, and then at most once per so many bytes newly buffered.

import { limits_max_connections, limits_memory_limit } from "./bindings";
import { ROOT } from "rt/tlsf";

const PAGE: u64 = 65536;

let limitCache: u64 = 0;

/** The most linear memory this instance may have, in bytes (`--max-memory`). */
export function memoryLimit(): u64 {
  if (limitCache == 0) limitCache = limits_memory_limit();
  return limitCache;
}

/** The most connections this instance may have open at once (`--max-connections`). */
export function maxConnections(): u32 {
  return limits_max_connections();
}

/** The linear memory as it has grown so far, in bytes. */
export function memoryGrown(): u64 {
  return <u64>memory.size() * PAGE;
}

// TLSF's root (std/assembly/rt/tlsf.ts, AssemblyScript 0.28, 32-bit): a
// first-level bitmap (usize), FL_BITS second-level bitmaps (u32), then
// FL_BITS * SL_SIZE free-list heads (usize), 16-aligned. A free block's
// first word is its size with two tag bits, its second the next free block.
const FL_BITS: usize = 23;
const SL_SIZE: usize = 16;
const SL_START: usize = sizeof<usize>();
const HL_START: usize = (SL_START + (FL_BITS << 2) + 15) & ~15;
const TAGS_MASK: usize = 3;
const BLOCK_OVERHEAD: usize = sizeof<usize>();
// A bound on the walk, should the structure not be what this expects.
const MAX_FREE_BLOCKS: i32 = 1 << 20;

/**
 * Bytes on the allocator's free lists (their payloads), or -1 when the
 * structure does not look like the one this was written for (then treat
 * the heap as full).
 */
export function freeInHeap(): i64 {
  const root = changetype<usize>(ROOT);
  if (root == 0) return 0;
  const end = <usize>memory.size() << 16;
  let total: i64 = 0;
  let seen = 0;
  for (let fl: usize = 0; fl < FL_BITS; fl++) {
    const slMap = load<u32>(root + SL_START + (fl << 2));
    if (slMap == 0) continue;
    for (let sl: usize = 0; sl < SL_SIZE; sl++) {
      if ((slMap & (1 << <u32>sl)) == 0) continue;
      let block = load<usize>(root + HL_START + (((fl << 4) + sl) << 2));
      while (block != 0) {
        if (block < root || block + BLOCK_OVERHEAD > end || ++seen > MAX_FREE_BLOCKS) return -1;
        const info = load<usize>(block);
        if ((info & 1) == 0) return -1; // a block on a free list must say FREE
        total += <i64>(info & ~TAGS_MASK);
        block = load<usize>(block, BLOCK_OVERHEAD + sizeof<usize>()); // `next` (after mmInfo and prev)
      }
    }
  }
  return total;
}

/**
 * The largest block on the allocator's free lists (its payload), 0 when
 * none, -1 when the structure is not what this expects. Free lists are
 * kept by size class, so it is in the highest non-empty one.
 */
export function largestFreeBlock(): i64 {
  const root = changetype<usize>(ROOT);
  if (root == 0) return 0;
  const end = <usize>memory.size() << 16;
  for (let fl: i32 = <i32>FL_BITS - 1; fl >= 0; fl--) {
    const slMap = load<u32>(root + SL_START + (<usize>fl << 2));
    if (slMap == 0) continue;
    const sl = <usize>(31 - clz<u32>(slMap));
    let block = load<usize>(root + HL_START + (((<usize>fl << 4) + sl) << 2));
    let largest: i64 = 0;
    let seen = 0;
    while (block != 0) {
      if (block < root || block + BLOCK_OVERHEAD > end || ++seen > MAX_FREE_BLOCKS) return -1;
      const info = load<usize>(block);
      if ((info & 1) == 0) return -1;
      const size = <i64>(info & ~TAGS_MASK);
      if (size > largest) largest = size;
      block = load<usize>(block, BLOCK_OVERHEAD + sizeof<usize>());
    }
    return largest;
  }
  return 0;
}

/**
 * Whether `n` bytes can be allocated now, in one block, with `keep` bytes
 * still available after: the allocator finds a free block large enough,
 * or memory can grow by enough. (The allocator rounds a large request up to
 * its size class, up to a sixteenth more; that is allowed for.)
 */
export function canAllocate(n: i64, keep: i64): bool {
  const need = n + (n >> 4) + 64;
  const ungrown = <i64>memoryLimit() - <i64>memoryGrown();
  // Memory can grow by a page more than asked: nothing to look at.
  if (ungrown >= need + keep + 65536) return true;
  const free = freeInHeap();
  if (free < 0) return false;
  if (free + max<i64>(ungrown, 0) < need + keep) return false;
  return ungrown >= need + 65536 || largestFreeBlock() >= need;
}

/** Bytes the instance could still allocate: free inside the heap plus memory not grown yet. */
export function memoryAvailable(): i64 {
  const free = freeInHeap();
  const ungrown = <i64>memoryLimit() - <i64>memoryGrown();
  return (free < 0 ? 0 : free) + (ungrown > 0 ? ungrown : 0);
}
