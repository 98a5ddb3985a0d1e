/**
 * Guest handles -> host sockets, for one plugin instance.
 *
 * A handle is `index | generation << indexBits`: bit 31 always clear, 0
 * never valid (indices below FIRST_SLOT are reserved). The index gets only
 * as many bits as the table has slots and the generation the rest, so the
 * default table (16,453 slots) has 15 index bits and 16 generation bits.
 *
 * No value is ever issued twice in an instance's life: every slot starts at
 * the instance's random salt and counts up by one per reuse, and a slot
 * whose next generation would be the salt again is retired for good rather
 * than wrapping. A stale handle therefore never names a later socket, and a
 * value copied from another instance is refused unless it happens to be the
 * current generation of that slot here (about 1 chance in 2^generationBits,
 * the salts being random). Each slot issues 2^generationBits handles; once
 * every slot is retired, insert says full (the guest gets `limit`) until
 * the instance restarts with a new table.
 *
 * The socket of each slot lives in `fds`, a Float64Array over a
 * SharedArrayBuffer that the supervisor also holds: if the worker dies
 * (trap, watchdog, crash) the supervisor closes whatever is still recorded
 * there. Slots below FIRST_SLOT hold the backend's own descriptors.
 */
import { FIRST_RESERVED_KEY } from '../backends/backend.js';

export const KIND_LISTENER = 1;
export const KIND_STREAM = 2;
/** A listener the host closed for draining: its handle stays valid, accept says would-block. */
export const KIND_DRAINED = 3;
/**
 * A connection the host holds before the guest may see it (its PROXY
 * protocol header not read yet, or read and waiting for accept): no guest
 * call takes its handle.
 */
export const KIND_PENDING = 4;

/** `fds` values: a free slot, and an occupied slot without a descriptor (a drained listener). */
export const FREE = -1;
export const NO_FD = -2;

export const FIRST_SLOT = 4;
/**
 * The registry cell of a socket being created (BackendOptions.creating):
 * recorded by the backend in the step that creates it, taken over by insert
 * (or dropped by abandon) in the step that records it in its own slot.
 * The last of the reserved slots; the backend's own descriptors use the others.
 */
export const CREATING_SLOT = FIRST_SLOT - 1;
/**
 * Handles are non-negative i32s: index and generation share bits 0-30. The
 * host registers sockets with their handle as the key, so every handle is
 * below the keys the selectors keep for themselves (backend.ts).
 */
const HANDLE_BITS = 31;
if (2 ** HANDLE_BITS > FIRST_RESERVED_KEY) throw new Error("handle-table: handles would reach the selectors' reserved keys");
/**
 * At least this many generation bits (the most connections a policy allows,
 * 65,536, leave 14): below it slots would retire after too few reuses to
 * serve for long.
 */
const MIN_GENERATION_BITS = 11;

/** Bits the index field needs to name every one of `slots` slots (reserved ones included). */
export function indexBitsFor(slots: number): number {
  return 32 - Math.clz32(slots - 1);
}

/**
 * The shared registry of a table with `capacity` slots, every entry FREE
 * from the start: a worker that dies before its table exists must leave
 * nothing for the supervisor to close (zeros would name descriptor 0).
 */
export function newRegistry(capacity: number): SharedArrayBuffer {
  const registry = new SharedArrayBuffer(registryBytes(capacity));
  new Float64Array(registry).fill(FREE);
  return registry;
}

/** Bytes of shared memory the registry of a table with `capacity` slots needs. */
export function registryBytes(capacity: number): number {
  return (capacity + FIRST_SLOT) * 8;
}

export class HandleTable {
  readonly capacity: number;
  /** Width of the index field; the generation takes the bits above it, up to bit 30. */
  readonly indexBits: number;
  readonly generationBits: number;
  private readonly indexMask: number;
  private readonly generationMask: number;
  /** Where every slot's generation starts (the salt), and where it would wrap back to. */
  private readonly salt: number;
  /** Shared with the supervisor: socket per slot, -1 when free. */
  readonly fds: Float64Array;
  readonly kind: Uint8Array;
  private readonly gen: Uint32Array;
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
  private retiredCount = 0;

  /**
   * `salt`: random per instance (only its low generationBits count).
   * `generationBits` narrows the generation below what the index leaves
   * free, so that tests can reach retirement in a few reuses.
   */
  constructor(registry: SharedArrayBuffer, salt: number, generationBits?: number) {
    this.fds = new Float64Array(registry);
    const slots = this.fds.length;
    this.capacity = slots - FIRST_SLOT;
    if (this.capacity < 1) throw new Error('handle table without slots');
    this.indexBits = indexBitsFor(slots);
    const room = HANDLE_BITS - this.indexBits;
    if (room < MIN_GENERATION_BITS) throw new Error(`handle table too large (${slots} slots leave ${room} generation bits)`);
    if (generationBits !== undefined && (generationBits < 1 || generationBits > room || !Number.isInteger(generationBits))) {
      throw new Error(`generationBits ${generationBits} outside 1..${room}`);
    }
    this.generationBits = generationBits ?? room;
    this.indexMask = (1 << this.indexBits) - 1;
    this.generationMask = 2 ** this.generationBits - 1;
    this.salt = (salt >>> 0) & this.generationMask;
    this.fds.fill(FREE);
    this.kind = new Uint8Array(slots);
    this.gen = new Uint32Array(slots).fill(this.salt);
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

  /**
   * What the host keeps per slot, in bytes: the shared registry's record
   * and every per-slot array here (kind, generation, registration, token,
   * readiness cache, idle clock, free list). Allocated for the policy's
   * maxConnections when the instance starts; a page costs memory once a
   * slot on it has been used.
   */
  get bytesPerSlot(): number {
    const perSlot = [
      this.fds,
      this.kind,
      this.gen,
      this.registered,
      this.interest,
      this.tokenLo,
      this.tokenHi,
      this.readReady,
      this.writeReady,
      this.peerClosed,
      this.active,
      this.idleShut,
      this.free,
    ];
    return perSlot.reduce((n, a) => n + a.BYTES_PER_ELEMENT, 0);
  }

  /** Handles one life of this table can issue: 2^generationBits per slot. */
  get lifetimeHandles(): number {
    return this.capacity * 2 ** this.generationBits;
  }

  /** Slots that have issued every generation and will never be used again. */
  get retired(): number {
    return this.retiredCount;
  }

  get open(): number {
    return this.openCount;
  }

  /** Records a backend-owned descriptor in a reserved slot (0..CREATING_SLOT-1). */
  recordOwn(i: number, fd: number): void {
    if (i >= CREATING_SLOT) throw new Error(`a backend owns ${i + 1} descriptors; the registry reserves ${CREATING_SLOT}`);
    this.fds[i] = fd;
  }

  /** The registry cell the backend records a socket being created in (BackendOptions.creating). */
  creatingCell(): Float64Array {
    return this.fds.subarray(CREATING_SLOT, CREATING_SLOT + 1);
  }

  /** A socket being created is closed without being inserted: its record goes first. */
  abandon(): void {
    this.fds[CREATING_SLOT] = FREE;
  }

  /** Adds a socket; returns its handle, or -1 when the table is full (open or retired slots). */
  insert(fd: number, kind: number): number {
    if (this.freeTop === 0) return -1; // the caller abandons and closes it
    const slot = this.free[--this.freeTop]!;
    // Its own slot first, then the cell it was created in: at every moment
    // at least one record names it (the supervisor closes each number once).
    this.fds[slot] = fd;
    this.fds[CREATING_SLOT] = FREE;
    this.kind[slot] = kind;
    this.registered[slot] = 0;
    this.readReady[slot] = 1;
    this.writeReady[slot] = 1;
    this.peerClosed[slot] = 0;
    this.idleShut[slot] = 0;
    this.openCount++;
    return this.handleOf(slot);
  }

  /** The slot of a live handle, or -1 for anything else. */
  lookup(handle: number): number {
    const slot = handle & this.indexMask;
    if (slot < FIRST_SLOT || slot >= this.fds.length) return -1;
    // A retired slot stays FREE, so none of its handles pass here again.
    if (this.fds[slot] === FREE || handle >>> this.indexBits !== this.gen[slot]) return -1;
    return slot;
  }

  /** The handle currently naming `slot` (for events). */
  handleOf(slot: number): number {
    return slot | (this.gen[slot]! << this.indexBits);
  }

  /**
   * Frees a slot and returns its socket (or NO_FD) for the caller to close. The shared
   * record is cleared first: if the worker dies between the two steps the
   * socket leaks rather than being closed twice (a second close could hit a
   * descriptor number the OS has already reused). A slot whose generation
   * would wrap back to the salt is retired instead of freed.
   */
  remove(slot: number): number {
    const fd = this.fds[slot]!;
    this.fds[slot] = FREE;
    this.registered[slot] = 0;
    this.openCount--;
    const next = (this.gen[slot]! + 1) & this.generationMask;
    if (next === this.salt) {
      this.retiredCount++;
    } else {
      this.gen[slot] = next;
      this.free[this.freeTop++] = slot;
    }
    return fd;
  }

  /** Every occupied slot (for closing all at shutdown, draining, the idle sweep). */
  *openSlots(): Generator<number> {
    for (let s = FIRST_SLOT; s < this.fds.length; s++) if (this.fds[s] !== FREE) yield s;
  }
}
