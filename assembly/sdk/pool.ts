// Byte buffers on loan: what a connection holds only while it needs it (an
// incomplete message, output waiting to be sent, a request's target) is
// taken from here and given back, so that a busy connection allocates
// nothing per message and an idle one holds nothing. The pool keeps at most
// POOL_MAX buffers, each at most POOL_KEEP bytes; a larger one gives its
// memory back to the heap first.

import { ByteBuffer } from "./buffer";

const POOL_MAX: i32 = 256;
const POOL_KEEP: i32 = 16 * 1024;

const pool = new Array<ByteBuffer>();

/** An empty buffer, shared, never written: what a field holds while it has no buffer on loan. */
export const EMPTY_BUFFER = new ByteBuffer(0);

/** An empty buffer (its capacity whatever it last had, up to POOL_KEEP; it grows as written). */
export function takeBuffer(): ByteBuffer {
  return pool.length > 0 ? pool.pop() : new ByteBuffer(0);
}

/** Gives `b` back; it must not be used afterwards. */
export function giveBuffer(b: ByteBuffer): void {
  b.clear();
  if (b.capacity > POOL_KEEP || pool.length >= POOL_MAX) b.release();
  if (pool.length < POOL_MAX) pool.push(b); // without its memory when it was large
}
