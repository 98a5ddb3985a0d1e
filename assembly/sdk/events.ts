import { EVENT_SIZE, EVENT_TOKEN, EVENT_READY } from "./bindings";
import { Readiness } from "./interest";

/**
 * The events one `Poll.poll` returned. The host writes them straight into
 * this buffer (see entry.ts: cabi_realloc hands it over), so reading events
 * allocates nothing. Valid until the next `poll`.
 */
export class Events {
  readonly capacity: u32;
  /** Start of `capacity` event records (16 bytes each, token then readiness). */
  readonly ptr: usize;
  length: u32 = 0;

  constructor(capacity: u32) {
    this.capacity = capacity > 0 ? capacity : 1;
    this.ptr = heap.alloc(<usize>this.capacity * EVENT_SIZE);
  }

  token(i: u32): u64 {
    return load<u64>(this.entry(i) + EVENT_TOKEN);
  }

  readiness(i: u32): u8 {
    return load<u8>(this.entry(i) + EVENT_READY);
  }

  isReadable(i: u32): bool { return (this.readiness(i) & Readiness.READABLE) != 0; }
  isWritable(i: u32): bool { return (this.readiness(i) & Readiness.WRITABLE) != 0; }
  isReadClosed(i: u32): bool { return (this.readiness(i) & Readiness.READ_CLOSED) != 0; }
  isHangUp(i: u32): bool { return (this.readiness(i) & Readiness.HANG_UP) != 0; }
  isError(i: u32): bool { return (this.readiness(i) & Readiness.ERROR) != 0; }

  // @ts-ignore: decorator
  @inline private entry(i: u32): usize {
    assert(i < this.length, "event index out of range");
    return this.ptr + <usize>i * EVENT_SIZE;
  }
}
