// Shared scratch memory for calls into the host, and the hand-over of
// host-allocated lists into buffers the SDK chose.

import { RESULT_IS_ERR, RESULT_U32_PAYLOAD, RESULT_UNIT_ERR } from "./bindings";
import { fromWit } from "./error";

/** The return area for every import call (the widest result is 28 bytes). */
export const RET: usize = memory.data(32, 8);

// When set, the next cabi_realloc(0, 0, _, n) with n <= reallocTargetSize
// returns reallocTarget instead of allocating: the host then receives data
// (recv) or events (wait) directly into the caller's buffer, with no copy
// inside the guest. Set just before an import that returns a list, cleared
// right after it.
let reallocTarget: usize = 0;
let reallocTargetSize: usize = 0;

// @ts-ignore: decorator
@inline export function lendBuffer(ptr: usize, size: usize): void {
  reallocTarget = ptr;
  reallocTargetSize = size;
}

// @ts-ignore: decorator
@inline export function unlendBuffer(): void {
  reallocTarget = 0;
}

/** Implements the canonical ABI's cabi_realloc (exported by entry.ts). */
export function realloc(old: usize, oldSize: usize, align: usize, newSize: usize): usize {
  if (old == 0 && reallocTarget != 0 && newSize <= reallocTargetSize) {
    const p = reallocTarget;
    reallocTarget = 0;
    lastLent = p;
    return p;
  }
  if (newSize == 0) {
    // A hand-back (see wit/tcp.wit, recv): free heap blocks, never a lent buffer.
    if (old != 0 && old != lastLent && old > align) heap.free(old);
    return align; // any aligned non-null pointer will do for an empty list
  }
  return old == 0 ? heap.alloc(newSize) : heap.realloc(old, newSize);
}

// The buffer most recently lent out, which a hand-back must not free.
let lastLent: usize = 0;

/** Reads a result<_, error-code> from RET: 0 or an IoError. */
// @ts-ignore: decorator
@inline export function unitResult(): i32 {
  return load<u8>(RET + RESULT_IS_ERR) == 0 ? 0 : fromWit(load<u8>(RET + RESULT_UNIT_ERR));
}

/** Reads a result<u32, error-code> from RET: the value or an IoError. */
// @ts-ignore: decorator
@inline export function u32Result(): i32 {
  return load<u8>(RET + RESULT_IS_ERR) == 0 ? load<i32>(RET + RESULT_U32_PAYLOAD) : fromWit(load<u8>(RET + RESULT_U32_PAYLOAD));
}
