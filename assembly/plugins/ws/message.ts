// A message being reassembled from its frames, unmasked.
//
// Not a ByteBuffer: a ByteBuffer keeps its largest size for the life of the
// connection, and one 1 MiB message per connection would then pin 1 MiB on
// every connection that ever sent one. This block goes back to the heap
// after any message larger than KEEP: small enough that a thousand idle
// connections hold little, and a heap allocation per larger message costs
// nothing next to broadcasting it.

const KEEP: i32 = 4 * 1024;

export class MessageBuffer {
  /** Start of the bytes (0 while nothing is allocated). */
  ptr: usize = 0;
  length: i32 = 0;
  private capacity: i32 = 0;

  /** Appends `n` bytes (contents up to the caller) and returns where they start. */
  append(n: i32): usize {
    const need = this.length + n;
    if (need > this.capacity) {
      const cap = max(need, max(this.capacity << 1, 256));
      this.ptr = this.ptr == 0 ? heap.alloc(<usize>cap) : heap.realloc(this.ptr, <usize>cap);
      this.capacity = cap;
    }
    const at = this.ptr + <usize>this.length;
    this.length = need;
    return at;
  }

  /** Empties it for the next message, handing a large block back. */
  clear(): void {
    this.length = 0;
    if (this.capacity > KEEP) this.free();
  }

  /** Hands the block back (the connection is gone). */
  free(): void {
    if (this.ptr != 0) heap.free(this.ptr);
    this.ptr = 0;
    this.capacity = 0;
    this.length = 0;
  }
}
