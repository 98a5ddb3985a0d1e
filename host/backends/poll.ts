/**
 * The portable selector: poll(2), the baseline the native backends are
 * measured against. One `struct pollfd` per registered socket, plus a pipe
 * as the waker (slot 0, level-triggered, drained on every wake-up). Runs
 * on every POSIX socket family (family.ts): Linux's, and the BSDs', where
 * the peer's FIN has no poll event of its own (no POLLRDHUP) and shows as
 * recv's end of stream instead.
 *
 * poll(2) is level-triggered; the contract (wit/poll.wit) is edge-triggered.
 * The gap is closed with one "armed" bit per socket and direction:
 *
 * - register and reregister arm both directions (readiness present then is
 *   reported, as a new edge);
 * - an event reported for a direction disarms it: the socket stays in the
 *   poll set for its other armed direction only, or leaves it (fd -1) when
 *   none is left, so that POLLHUP/POLLERR, which poll(2) reports whatever the
 *   mask, cannot repeat either;
 * - a would-block, or a short read or write, arms that direction again:
 *   the point after which the contract promises the next event. The
 *   consumer says so (`drained()`, called by sandbox/instance-host.ts
 *   wherever it learns a direction would block: mio's do_io), and its
 *   readiness cache answers would-block without a call only after it has.
 *   The IOCP backend re-arms its one-shot AFD polls at the same call.
 *
 * A plugin that registers writable and never writes therefore hears of it
 * once instead of on every wait (the level-triggered spin), and nothing is
 * missed: once re-armed, poll(2) reports any readiness present at the next
 * call, including what arrived between the would-block and that call.
 *
 * Cost: O(registered sockets) per wait, in the kernel and in the scan of
 * `revents`. That is what this backend is for (bench/wait.mjs measures it).
 * Registration is O(1): an fd -> index map, swap-remove on deregister.
 */
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
import { posixFamily } from './family.js';
import { OsErrors, SocketOps, type PosixFamily } from './socket-ops.js';
import { PipeWaker } from './wakers.js';
import type { SocketAddress } from './address.js';

// This OS's family: poll(2) runs on Linux and the BSDs alike.
const family = await posixFamily();

// Entry 0 of the pollfd array is the waker; sockets start at 1, so index 0
// in `indexOf` means "not registered".
const WAKER = 0;
const FIRST = 1;
const INITIAL_CAPACITY = 64;

// Armed directions use the WIT interest bits.
const READ = INTEREST_READABLE;
const WRITE = INTEREST_WRITABLE;

class PollSelector implements Selector {
  readonly ownDescriptors: readonly number[];
  /** The pipe's write end (BackendModule.wake writes one byte to it). */
  readonly wakeTarget: number;
  private readonly waker: PipeWaker;
  private readonly c: PosixFamily;

  // The pollfd array handed to poll(2) and views on it: fd at int32 [2i],
  // events at int16 [4i + 2], revents at int16 [4i + 3].
  private pollfds!: Buffer;
  private fd32!: Int32Array;
  private ev16!: Int16Array;
  // Per entry: the socket (the pollfd's fd is -1 while nothing is armed),
  // the key events carry, the interest, the armed directions.
  private sockets!: Int32Array;
  private keys!: Uint32Array;
  private interests!: Uint8Array;
  private armed!: Uint8Array;
  private capacity = 0;
  /** Entries in use, the waker included. */
  private count = FIRST;
  /** socket -> entry index (0: not registered). Grows with the largest socket seen. */
  private indexOf = new Int32Array(1024);
  /** Where the next scan of revents starts, so that `max` cannot starve the last entries. */
  private cursor = FIRST;

  constructor(private readonly errors: OsErrors) {
    this.c = family;
    this.waker = new PipeWaker(family);
    this.wakeTarget = this.waker.target;
    this.ownDescriptors = [this.waker.readFd, this.waker.target];
    this.grow(INITIAL_CAPACITY);
    this.fd32[2 * WAKER] = this.waker.readFd;
    this.ev16[4 * WAKER + 2] = family.POLLIN;
  }

  private grow(capacity: number): void {
    const pollfds = Buffer.alloc(capacity * this.c.POLLFD_SIZE);
    const sockets = new Int32Array(capacity);
    const keys = new Uint32Array(capacity);
    const interests = new Uint8Array(capacity);
    const armed = new Uint8Array(capacity);
    if (this.capacity > 0) {
      this.pollfds.copy(pollfds, 0, 0, this.count * this.c.POLLFD_SIZE);
      sockets.set(this.sockets.subarray(0, this.count));
      keys.set(this.keys.subarray(0, this.count));
      interests.set(this.interests.subarray(0, this.count));
      armed.set(this.armed.subarray(0, this.count));
    }
    this.pollfds = pollfds;
    this.fd32 = new Int32Array(pollfds.buffer, pollfds.byteOffset, 2 * capacity);
    this.ev16 = new Int16Array(pollfds.buffer, pollfds.byteOffset, 4 * capacity);
    this.sockets = sockets;
    this.keys = keys;
    this.interests = interests;
    this.armed = armed;
    this.capacity = capacity;
  }

  private entryOf(sock: number): number {
    return sock >= 0 && sock < this.indexOf.length ? this.indexOf[sock]! : 0;
  }

  /** Writes entry i's pollfd from its interest and armed directions. */
  private refresh(i: number): void {
    const c = this.c;
    const want = this.interests[i]! & this.armed[i]!;
    let events = 0;
    if (want & READ) events |= c.POLLIN | c.POLLRDHUP;
    if (want & WRITE) events |= c.POLLOUT;
    this.ev16[4 * i + 2] = events;
    // A negative fd is skipped by poll(2), POLLHUP and POLLERR included.
    this.fd32[2 * i] = events !== 0 ? this.sockets[i]! : -1;
  }

  register(sock: number, key: number, interest: number): number {
    if (this.entryOf(sock) !== 0) return ALREADY_REGISTERED;
    if (this.count === this.capacity) this.grow(2 * this.capacity);
    if (sock >= this.indexOf.length) {
      const bigger = new Int32Array(Math.max(2 * this.indexOf.length, sock + 1));
      bigger.set(this.indexOf);
      this.indexOf = bigger;
    }
    const i = this.count++;
    this.indexOf[sock] = i;
    this.sockets[i] = sock;
    this.keys[i] = key;
    this.interests[i] = interest;
    this.armed[i] = READ | WRITE;
    this.ev16[4 * i + 3] = 0;
    this.refresh(i);
    return 0;
  }

  reregister(sock: number, key: number, interest: number): number {
    const i = this.entryOf(sock);
    if (i === 0) return NOT_REGISTERED;
    this.keys[i] = key;
    this.interests[i] = interest;
    this.armed[i] = READ | WRITE;
    this.refresh(i);
    return 0;
  }

  deregister(sock: number): number {
    const i = this.entryOf(sock);
    if (i === 0) return NOT_REGISTERED;
    this.remove(i);
    return 0;
  }

  // The consumer found a direction drained (a would-block, a short read or
  // write; not end of stream, which brings no new edge): arm it again.
  drained(sock: number, interest: number): void {
    const direction = interest & (READ | WRITE);
    const i = this.entryOf(sock);
    if (i === 0 || (this.armed[i]! & direction) === direction) return;
    this.armed[i] |= direction;
    this.refresh(i);
  }

  // Swap-remove: the last entry moves into the hole.
  private remove(i: number): void {
    const last = this.count - 1;
    this.indexOf[this.sockets[i]!] = 0;
    if (i !== last) {
      const moved = this.sockets[last]!;
      this.sockets[i] = moved;
      this.keys[i] = this.keys[last]!;
      this.interests[i] = this.interests[last]!;
      this.armed[i] = this.armed[last]!;
      this.fd32[2 * i] = this.fd32[2 * last]!;
      this.ev16[4 * i + 2] = this.ev16[4 * last + 2]!;
      this.indexOf[moved] = i;
    }
    this.count = last;
    if (this.cursor >= this.count) this.cursor = FIRST;
  }

  wait(out: Uint32Array, max: number, timeoutMs: number): number {
    const c = this.c;
    const n = c.poll(this.pollfds, this.count, timeoutMs) as number;
    if (n <= 0) {
      if (n === 0) return 0;
      const r = this.errors.fail();
      return r === fail(ErrorCode.WouldBlock) ? 0 : r; // EINTR: report nothing
    }
    const ev = this.ev16;
    let left = n;
    if (ev[4 * WAKER + 3] !== 0) {
      this.waker.drain();
      left--;
    }
    const total = this.count;
    let i = this.cursor < total ? this.cursor : FIRST;
    let count = 0;
    for (let seen = FIRST; seen < total && left > 0 && count < max; seen++) {
      const rev = ev[4 * i + 3]!;
      if (rev !== 0) {
        left--;
        let ready = 0;
        if (rev & c.POLLIN) ready |= READY_READABLE;
        if (rev & c.POLLOUT) ready |= READY_WRITABLE;
        if (rev & c.POLLRDHUP) ready |= READY_READ_CLOSED | READY_READABLE;
        if (rev & c.POLLHUP) ready |= READY_HANG_UP | READY_READABLE | READY_WRITABLE;
        if (rev & (c.POLLERR | c.POLLNVAL)) ready |= READY_ERROR | READY_READABLE | READY_WRITABLE;
        // Reported: quiet in that direction until the guest sees would-block.
        this.armed[i] &= ~(ready & (READ | WRITE));
        this.refresh(i);
        out[2 * count] = this.keys[i]!;
        out[2 * count + 1] = ready;
        count++;
      }
      if (++i === total) i = FIRST;
    }
    this.cursor = i;
    return count;
  }

  forget(sock: number): void {
    const i = this.entryOf(sock);
    if (i !== 0) this.remove(i);
  }

  close(): void {
    this.waker.close();
  }
}

export const poll: BackendModule = {
  name: 'poll',
  open(options: BackendOptions) {
    const errors = new OsErrors(family);
    return compose('poll', new PollSelector(errors), new SocketOps(family, errors, options));
  },
  wake(target: number) {
    PipeWaker.wake(family, target);
  },
  closeDescriptor(fd: number) {
    family.close(fd);
  },
  reserve(addr: SocketAddress, out: SocketAddress) {
    return new SocketOps(family, new OsErrors(family), null).reserve(addr, out);
  },
  inherit(fd: number, addr: SocketAddress) {
    return new SocketOps(family, new OsErrors(family), null).inherit(fd, addr);
  },
};
