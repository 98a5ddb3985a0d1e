/**
 * The kqueue backend: macOS and FreeBSD, and any OS where WASMUX_KQUEUE_LIBRARY
 * names a kqueue implementation (libkqueue on Linux). Sockets are the OS's
 * own: bsd-sockets.ts on macOS/FreeBSD, posix-sockets.ts on Linux.
 *
 * How the contract (backend.ts, wit/poll.wit) is met:
 * - Edges: a socket is watched by EVFILT_READ and EVFILT_WRITE, both with
 *   EV_CLEAR and the key in udata, registered in one kevent call as mio
 *   does, the write filter first: libkqueue (2.7.0, Linux) stops reporting
 *   EV_EOF when data and FIN arrive in one edge on a socket whose write
 *   filter was added after its read filter, and the host would then never
 *   see the end of stream (a short read is taken as drained). An interest
 *   without writable has no write filter at all rather than a disabled one:
 *   nothing is kept that could fire.
 * - Reregister is EV_DELETE of the filters the socket has, then EV_ADD of
 *   those wanted (one kevent call): a new filter is evaluated when added,
 *   so readiness present at that moment is reported, which is the re-arm
 *   reregister owes. (EV_ADD on an existing filter re-evaluates it on the
 *   BSDs, but not on libkqueue, which would lose the edge.)
 * - Per-change errors: every change carries EV_RECEIPT, so each comes back
 *   as its own EV_ERROR entry (data = 0 or an errno), in the order of the
 *   changes, and a change call never consumes a pending event.
 * - One event per key per wait: the two filters of a socket report
 *   separately; wait merges them. It asks kevent for at most `max` entries,
 *   so merging can only shrink the list and no event is left behind.
 * - Waker: an EVFILT_USER event with EV_CLEAR. BackendModule.wake triggers it
 *   from the main thread (NOTE_TRIGGER on the kqueue descriptor, which is
 *   the wakeTarget). A trigger that lands before the wait stays pending until
 *   a wait reports it, so no wake-up is lost.
 * - EV_DELETE before close: a kernel kqueue drops a descriptor's filters on
 *   close by itself, but a user-space kqueue (libkqueue) cannot see a close
 *   and would keep a registration that a reused descriptor number inherits.
 *   Costs one kevent call per close of a registered socket.
 *
 * Readiness (mio reads kevents the same way):
 *   EVFILT_READ               -> readable
 *   EVFILT_READ + EV_EOF      -> readable, read-closed (the peer sent FIN)
 *   EVFILT_WRITE              -> writable
 *   EVFILT_WRITE + EV_EOF     -> writable (send fails from now on: that is
 *                                how the guest learns it; WIT has no
 *                                write-closed flag, and EV_EOF here also
 *                                follows our own shutdown(SHUT_WR))
 *   both EOFs in one wait     -> hang-up as well
 *   EV_EOF with fflags != 0   -> error (+ readable, writable): fflags holds
 *                                the socket error
 */
import * as k from '../ffi/kqueue-lib.js';
import {
  EVFILT_READ,
  EVFILT_WRITE,
  EV_ADD,
  EV_CLEAR,
  EV_DELETE,
  EV_EOF,
  EV_ERROR,
  EV_RECEIPT,
  KeventList,
  NOTE_TRIGGER,
  TIMESPEC_SIZE,
} from '../ffi/kevent.js';
import {
  ErrorCode,
  INTEREST_READABLE,
  INTEREST_WRITABLE,
  READY_ERROR,
  READY_HANG_UP,
  READY_READABLE,
  READY_READ_CLOSED,
  READY_WRITABLE,
} from '../generated/contract.js';
import { ALREADY_REGISTERED, NOT_REGISTERED, compose, fail, type BackendModule, type BackendOptions, type Selector } from './backend.js';
import type { SocketAddress } from './address.js';
import { posixFamily } from './family.js';
import { OsErrors, SocketOps } from './socket-ops.js';

// This OS's socket family: the BSDs' own, or Linux's under a kqueue library.
const sys = await posixFamily();

const { EVFILT_USER, size: KEVENT_SIZE } = k.flavour;
// The waker's ident. EVFILT_USER idents are not descriptors: any number.
const WAKE_IDENT = 0x77616b65;
const MAX_EVENTS = 1024;
// Bits of `filters[fd]`: which filters a socket has in this kqueue.
const HAS_READ = 1;
const HAS_WRITE = 2;
const TWO_32 = 4294967296;
// errno values kevent reports here.
const { ENOENT, EINTR, EPIPE } = sys.E;

class KqueueSelector implements Selector {
  readonly ownDescriptors: readonly number[];
  readonly wakeTarget: number;
  private readonly kq: number;
  // Changes and their receipts (at most four per call: a reregister deletes
  // both filters and adds both back), and per change the errno that means
  // its goal already holds.
  private readonly changes = new KeventList(KEVENT_SIZE, 4);
  private readonly receipts = new KeventList(KEVENT_SIZE, 4);
  private readonly ignored = new Int32Array(4);
  private readonly events = new KeventList(KEVENT_SIZE, MAX_EVENTS);
  private readonly timeout = Buffer.alloc(TIMESPEC_SIZE);
  private readonly timeout32 = new Uint32Array(this.timeout.buffer, this.timeout.byteOffset, TIMESPEC_SIZE >>> 2);
  // Per descriptor: its filters, and for merging, the wait that last saw it
  // and where its event went. Grown on demand (descriptors are small numbers).
  private filters = new Uint8Array(256);
  private seenIn = new Uint32Array(256);
  private slotOf = new Uint32Array(256);
  private waits = 0;
  // Per output slot of the current wait: bit 1 read EOF, bit 2 write EOF seen.
  private readonly eofs = new Uint8Array(MAX_EVENTS);

  constructor(private readonly errors: OsErrors) {
    const kq = k.kqueue() as number;
    if (kq < 0) throw new Error(`kqueue() failed: ${this.lastOsErrorNow()}`);
    sys.cloexec(kq);
    this.kq = kq;
    this.wakeTarget = kq;
    this.ownDescriptors = [kq];
    this.changes.set(0, WAKE_IDENT, EVFILT_USER, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, 0);
    this.ignored[0] = 0;
    if (this.apply(1) < 0) {
      const why = this.errors.name();
      sys.close(kq);
      throw new Error(`registering the EVFILT_USER waker (${EVFILT_USER}) with ${k.KQUEUE_LIBRARY} failed: ${why}`);
    }
  }

  private lastOsErrorNow(): string {
    this.errors.fail();
    return this.errors.name();
  }

  /**
   * Applies the first `n` entries of `changes` (each with EV_RECEIPT) and
   * checks every receipt (the i-th answers the i-th change) against
   * `ignored[i]`, an errno that means that change's goal already holds.
   * Returns 0 or fail().
   */
  private apply(n: number): number {
    const r = k.kevent(this.kq, this.changes.bytes, n, this.receipts.bytes, n, null) as number;
    if (r < 0) {
      const e = sys.errno();
      // Interrupted by a signal, the changes have been applied (FreeBSD's kevent(2); mio relies on it).
      return e === EINTR ? 0 : this.errors.failWith(e);
    }
    const rc = this.receipts;
    for (let i = 0; i < r; i++) {
      if (!(rc.flags(i) & EV_ERROR)) continue;
      const e = rc.data(i);
      if (e !== 0 && e !== this.ignored[i]) return this.errors.failWith(e);
    }
    return 0;
  }

  private grow(fd: number): void {
    let size = this.filters.length;
    while (size <= fd) size *= 2;
    const filters = new Uint8Array(size);
    const seenIn = new Uint32Array(size);
    const slotOf = new Uint32Array(size);
    filters.set(this.filters);
    seenIn.set(this.seenIn);
    slotOf.set(this.slotOf);
    this.filters = filters;
    this.seenIn = seenIn;
    this.slotOf = slotOf;
  }

  register(sock: number, key: number, interest: number): number {
    if (sock >= this.filters.length) this.grow(sock);
    if (this.filters[sock] !== 0) return ALREADY_REGISTERED;
    return this.set(sock, key, interest);
  }

  reregister(sock: number, key: number, interest: number): number {
    if (sock >= this.filters.length || this.filters[sock] === 0) return NOT_REGISTERED;
    return this.set(sock, key, interest);
  }

  // Makes the socket's filters match `interest`: EV_DELETE for each filter
  // it has, then EV_ADD for each wanted direction, write before read (see
  // the top of this file for both orders).
  private set(sock: number, key: number, interest: number): number {
    const has = this.filters[sock]!;
    const ch = this.changes;
    const ignored = this.ignored;
    let n = 0;
    const add = EV_ADD | EV_CLEAR | EV_RECEIPT;
    const del = EV_DELETE | EV_RECEIPT;
    // ENOENT: already deleted. EPIPE: old macOS refuses to register an fd
    // whose peer is gone yet reports it afterwards (mio ignores it too).
    if (has & HAS_READ) {
      ignored[n] = ENOENT;
      ch.set(n++, sock, EVFILT_READ, del, 0, 0, 0);
    }
    if (has & HAS_WRITE) {
      ignored[n] = ENOENT;
      ch.set(n++, sock, EVFILT_WRITE, del, 0, 0, 0);
    }
    if (interest & INTEREST_WRITABLE) {
      ignored[n] = EPIPE;
      ch.set(n++, sock, EVFILT_WRITE, add, 0, 0, key);
    }
    if (interest & INTEREST_READABLE) {
      ignored[n] = EPIPE;
      ch.set(n++, sock, EVFILT_READ, add, 0, 0, key);
    }
    const r = this.apply(n);
    if (r < 0) {
      this.deleteFilters(sock, HAS_READ | HAS_WRITE);
      return r;
    }
    this.filters[sock] = (interest & INTEREST_READABLE ? HAS_READ : 0) | (interest & INTEREST_WRITABLE ? HAS_WRITE : 0);
    return 0;
  }

  private deleteFilters(sock: number, which: number): number {
    const ch = this.changes;
    let n = 0;
    if (which & HAS_READ) ch.set(n++, sock, EVFILT_READ, EV_DELETE | EV_RECEIPT, 0, 0, 0);
    if (which & HAS_WRITE) ch.set(n++, sock, EVFILT_WRITE, EV_DELETE | EV_RECEIPT, 0, 0, 0);
    this.ignored.fill(ENOENT, 0, n);
    this.filters[sock] = 0;
    return n === 0 ? 0 : this.apply(n);
  }

  deregister(sock: number): number {
    if (sock >= this.filters.length || this.filters[sock] === 0) return NOT_REGISTERED;
    return this.deleteFilters(sock, this.filters[sock]!);
  }

  wait(out: Uint32Array, max: number, timeoutMs: number): number {
    let timeout: Buffer | null = null;
    if (timeoutMs >= 0) {
      this.timeout32[0] = Math.floor(timeoutMs / 1000); // tv_sec (int64; high word stays 0)
      this.timeout32[2] = (timeoutMs % 1000) * 1_000_000; // tv_nsec
      timeout = this.timeout;
    }
    const ev = this.events;
    const n = k.kevent(this.kq, null, 0, ev.bytes, Math.min(max, MAX_EVENTS), timeout) as number;
    if (n < 0) {
      const r = this.errors.fail();
      return r === fail(ErrorCode.WouldBlock) ? 0 : r; // EINTR: report nothing
    }
    const wait = ++this.waits;
    if (wait === TWO_32 - 1) {
      this.seenIn.fill(0);
      this.waits = 0;
    }
    let count = 0;
    for (let i = 0; i < n; i++) {
      const filter = ev.filter(i);
      const flags = ev.flags(i);
      // The waker (consumed by being reported: EV_CLEAR), and errors of
      // changes, which never travel with a wait (changes use EV_RECEIPT).
      if (filter === EVFILT_USER || flags & EV_ERROR) continue;
      const fd = ev.ident(i);
      if (fd >= this.seenIn.length) continue; // never registered here
      let ready: number;
      let eof = 0;
      if (filter === EVFILT_READ) {
        ready = READY_READABLE;
        if (flags & EV_EOF) {
          ready |= READY_READ_CLOSED;
          eof = 1;
        }
      } else {
        ready = READY_WRITABLE;
        if (flags & EV_EOF) eof = 2;
      }
      if (eof && ev.fflags(i) !== 0) ready |= READY_ERROR | READY_READABLE | READY_WRITABLE;
      let slot: number;
      if (this.seenIn[fd] === wait) {
        slot = this.slotOf[fd]!;
        this.eofs[slot]! |= eof;
        out[2 * slot + 1]! |= ready;
      } else {
        slot = count++;
        this.seenIn[fd] = wait;
        this.slotOf[fd] = slot;
        this.eofs[slot] = eof;
        out[2 * slot] = ev.udata(i) >>> 0;
        out[2 * slot + 1] = ready;
      }
      if (this.eofs[slot] === 3) out[2 * slot + 1]! |= READY_HANG_UP | READY_READABLE | READY_WRITABLE;
    }
    return count;
  }

  forget(sock: number): void {
    if (sock < this.filters.length && this.filters[sock] !== 0) this.deleteFilters(sock, this.filters[sock]!);
  }

  close(): void {
    sys.close(this.kq);
  }
}

// Main thread: the trigger for a worker's waker, built once.
const trigger = new KeventList(KEVENT_SIZE, 1);
trigger.set(0, WAKE_IDENT, EVFILT_USER, 0, NOTE_TRIGGER, 0, 0);

export const kqueue: BackendModule = {
  name: 'kqueue',
  open(options: BackendOptions) {
    const errors = new OsErrors(sys);
    return compose('kqueue', new KqueueSelector(errors), new SocketOps(sys, errors, options));
  },
  wake(target: number) {
    k.kevent(target, trigger.bytes, 1, null, 0, null);
  },
  closeDescriptor(fd: number) {
    sys.close(fd);
  },
  reserve(addr: SocketAddress, out: SocketAddress) {
    return new SocketOps(sys, new OsErrors(sys), null).reserve(addr, out);
  },
  inherit(fd: number, addr: SocketAddress) {
    return new SocketOps(sys, new OsErrors(sys), null).inherit(fd, addr);
  },
};
