import { poll_register, poll_reregister, poll_deregister, poll_wait } from "./bindings";
import { RET, lendBuffer, unlendBuffer, unitResult } from "./abi";
import { Events } from "./events";
import { EVENT_SIZE } from "./bindings";

// Called before each wait when set (metrics.ts: the batched metric updates go
// to the host then). A hook, so that a plugin without metrics does not import them.
let beforeWait: (() => void) | null = null;

/** Sets what runs before each wait (the SDK's metrics flush). */
export function onBeforeWait(f: () => void): void {
  beforeWait = f;
}

/** A source of events: anything with a host handle (TcpListener, TcpStream). */
export interface Source {
  readonly handle: u32;
}

/**
 * The plugin's event loop core, like mio's Poll: register sources with a
 * token and an interest, then `poll` for the ready ones. Edge-triggered:
 * after an event, read or write until IoError.WouldBlock.
 */
export class Poll {
  /** Starts watching `source`. Returns 0 or an IoError. */
  register(source: Source, token: u64, interest: u32): i32 {
    poll_register(source.handle, token, interest, RET);
    return unitResult();
  }

  /** Changes token and interest of a registered source. Returns 0 or an IoError. */
  reregister(source: Source, token: u64, interest: u32): i32 {
    poll_reregister(source.handle, token, interest, RET);
    return unitResult();
  }

  /** Stops watching `source`. Returns 0 or an IoError. */
  deregister(source: Source): i32 {
    poll_deregister(source.handle, RET);
    return unitResult();
  }

  /**
   * Waits for events, at most `timeoutMs` milliseconds (-1: no limit), and
   * fills `events` (up to its capacity). Returns the number of events; 0
   * means the timeout passed.
   */
  poll(events: Events, timeoutMs: i32 = -1): u32 {
    const hook = beforeWait;
    if (hook !== null) hook();
    lendBuffer(events.ptr, <usize>events.capacity * EVENT_SIZE);
    poll_wait(events.capacity, timeoutMs >= 0 ? 1 : 0, timeoutMs >= 0 ? <u32>timeoutMs : 0, RET);
    unlendBuffer();
    const ptr = load<usize>(RET);
    const n = load<u32>(RET + 4);
    // The host writes into the lent buffer; should a host ever allocate
    // elsewhere, copy so that `events` still holds the result.
    if (ptr != events.ptr) {
      memory.copy(events.ptr, ptr, <usize>min(n, events.capacity) * EVENT_SIZE);
      if (ptr > <usize>EVENT_SIZE) heap.free(ptr);
    }
    events.length = n;
    return n;
  }
}
