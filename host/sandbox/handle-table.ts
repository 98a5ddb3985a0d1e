/**
 * Guest handles -> host sockets, for one plugin instance.
 *
 * A handle is `index | generation << 20` (bit 31 always clear, 0 never
 * valid). The generation changes every time a slot is reused and starts
 * from a per-instance random salt, so a stale handle, a guessed one or one
 * copied from another instance is refused rather than reaching a socket.
 *
 * The socket of each slot lives in `fds`, a Float64Array over a
 * SharedArrayBuffer that the supervisor also holds: if the worker dies
 * (trap, watchdog, crash) the supervisor closes whatever is still recorded
 * there. Slots below FIRST_SLOT hold the backend's own descriptors.
 */
export const KIND_LISTENER = 1;
export const KIND_STREAM = 2;
/** A listener the host closed for draining: its handle stays valid, accept says would-block. */
export const KIND_DRAINED = 3;

/** `fds` values: a free slot, and an occupied slot without a descriptor (a drained listener). */
export const FREE = -1;
export const NO_FD = -2;

export const FIRST_SLOT = 4;
const INDEX_BITS = 20;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
const GEN_MASK = 0x7ff; // 11 bits

/** Bytes of shared memory the registry of a table with `capacity` slots needs. */
export function registryBytes(capacity: number): number {
  return (capacity + FIRST_SLOT) * 8;
}

export class HandleTable {
  readonly capacity: number;
  /** Shared with the supervisor: socket per slot, -1 when free. */
  readonly fds: Float64Array;
  readonly kind: Uint8Array;
  private readonly gen: Uint16Array;
  // Registration state, read by the poll and tcp glue.
  readonly registered: Uint8Array;
  readonly interest: Uint8Array;
  readonly tokenLo: Uint32Array;
  readonly tokenHi: Uint32Array;
  // Host-side readiness, for answering would-block without a syscall: cleared
  // when the OS says would-block (or a recv/send comes back short), set by
  // every event. Only consulted while the matching interest is registered,
  // since only then is an event guaranteed to set it again.
  readonly readReady: Uint8Array;
  readonly writeReady: Uint8Array;
  /** An event reported read-closed, hang-up or error: reads must reach the kernel. */
  readonly peerClosed: Uint8Array;
  /** Last traffic on each stream (ms, the glue's coarse clock), for the idle timeout. */
  readonly active: Float64Array;
  /** The idle timeout already shut this stream down. */
  readonly idleShut: Uint8Array;
  private readonly free: Int32Array;
  private freeTop = 0;
  private openCount = 0;

  constructor(registry: SharedArrayBuffer, salt: number) {
    this.fds = new Float64Array(registry);
    const slots = this.fds.length;
    this.capacity = slots - FIRST_SLOT;
    if (slots > INDEX_MASK) throw new Error('handle table too large');
    this.fds.fill(FREE);
    this.kind = new Uint8Array(slots);
    this.gen = new Uint16Array(slots).fill(salt & GEN_MASK);
    this.registered = new Uint8Array(slots);
    this.interest = new Uint8Array(slots);
    this.tokenLo = new Uint32Array(slots);
    this.tokenHi = new Uint32Array(slots);
    this.readReady = new Uint8Array(slots);
    this.writeReady = new Uint8Array(slots);
    this.peerClosed = new Uint8Array(slots);
    this.active = new Float64Array(slots);
    this.idleShut = new Uint8Array(slots);
    this.free = new Int32Array(this.capacity);
    // Lowest slots first, so a fresh instance's first handles are small.
    for (let s = slots - 1; s >= FIRST_SLOT; s--) this.free[this.freeTop++] = s;
  }

  get open(): number {
    return this.openCount;
  }

  /** Records a backend-owned descriptor in a reserved slot (0..FIRST_SLOT-1). */
  recordOwn(i: number, fd: number): void {
    this.fds[i] = fd;
  }

  /** Adds a socket; returns its handle, or -1 when the table is full. */
  insert(fd: number, kind: number): number {
    if (this.freeTop === 0) return -1;
    const slot = this.free[--this.freeTop]!;
    this.fds[slot] = fd;
    this.kind[slot] = kind;
    this.registered[slot] = 0;
    this.readReady[slot] = 1;
    this.writeReady[slot] = 1;
    this.peerClosed[slot] = 0;
    this.idleShut[slot] = 0;
    this.openCount++;
    return slot | (this.gen[slot]! << INDEX_BITS);
  }

  /** The slot of a live handle, or -1 for anything else. */
  lookup(handle: number): number {
    const slot = handle & INDEX_MASK;
    if (slot < FIRST_SLOT || slot >= this.fds.length) return -1;
    if (this.fds[slot] === FREE || handle >>> INDEX_BITS !== this.gen[slot]) return -1;
    return slot;
  }

  /** The handle currently naming `slot` (for events). */
  handleOf(slot: number): number {
    return slot | (this.gen[slot]! << INDEX_BITS);
  }

  /**
   * Frees a slot and returns its socket (or NO_FD) for the caller to close. The shared
   * record is cleared first: if the worker dies between the two steps the
   * socket leaks rather than being closed twice (a second close could hit a
   * descriptor number the OS has already reused).
   */
  remove(slot: number): number {
    const fd = this.fds[slot]!;
    this.fds[slot] = FREE;
    this.gen[slot] = (this.gen[slot]! + 1) & GEN_MASK;
    this.registered[slot] = 0;
    this.free[this.freeTop++] = slot;
    this.openCount--;
    return fd;
  }

  /** Every occupied slot (for closing all at shutdown, draining, the idle sweep). */
  *openSlots(): Generator<number> {
    for (let s = FIRST_SLOT; s < this.fds.length; s++) if (this.fds[s] !== FREE) yield s;
  }
}
