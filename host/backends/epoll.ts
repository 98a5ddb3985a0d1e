/**
 * The Linux selector: epoll in edge-triggered mode, an eventfd as the
 * waker. Composed with the Linux socket family (backend.ts compose()).
 */
import * as c from '../ffi/libc-linux.js';
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
import { FIRST_RESERVED_KEY, compose, fail, type BackendModule, type BackendOptions, type Selector } from './backend.js';
import { LINUX } from './linux-family.js';
import { OsErrors, SocketOps } from './socket-ops.js';
import type { SocketAddress } from './address.js';

// epoll_event in 32-bit words: its stride, and where the data (our key, its low half) is.
const STRIDE = c.EPOLL_EVENT_SIZE >>> 2;
const DATA = c.EPOLL_EVENT_DATA >>> 2;
/** The eventfd's key: a selector's own (backend.ts FIRST_RESERVED_KEY). */
const WAKE_KEY = FIRST_RESERVED_KEY;
const MAX_EVENTS = 1024;

class EpollSelector implements Selector {
  readonly ownDescriptors: readonly number[];
  readonly wakeTarget: number;
  private readonly epfd: number;
  // One epoll_event for epoll_ctl, and the array epoll_wait fills; read
  // through u32 views (records of STRIDE words: events, then data lo and hi at DATA).
  private readonly ctlEvent = Buffer.alloc(c.EPOLL_EVENT_SIZE);
  private readonly events = Buffer.alloc(c.EPOLL_EVENT_SIZE * MAX_EVENTS);
  private readonly events32 = new Uint32Array(this.events.buffer, this.events.byteOffset, STRIDE * MAX_EVENTS);
  private readonly drain = Buffer.alloc(8);

  constructor(private readonly errors: OsErrors) {
    const epfd = c.epoll_create1(c.EPOLL_CLOEXEC);
    if (epfd < 0) throw new Error(`epoll_create1 failed: ${this.osError()}`);
    const efd = c.eventfd(0, c.EFD_NONBLOCK | c.EFD_CLOEXEC);
    if (efd < 0) {
      const why = this.osError();
      c.close(epfd);
      throw new Error(`eventfd failed: ${why}`);
    }
    this.epfd = epfd;
    this.wakeTarget = efd;
    this.ownDescriptors = [epfd, efd];
    // The waker is level-triggered: it stays ready until drained, so a wake
    // that lands between two waits is not lost.
    this.ctl(c.EPOLL_CTL_ADD, efd, WAKE_KEY, c.EPOLLIN);
  }

  private osError(): string {
    this.errors.fail();
    return this.errors.name();
  }

  // EEXIST (add) and ENOENT (mod, del) come back through the errno table as
  // the contract's ALREADY_REGISTERED and NOT_REGISTERED.
  private ctl(op: number, fd: number, key: number, events: number): number {
    const ev = this.ctlEvent;
    ev.writeUInt32LE(events >>> 0, 0);
    ev.writeUInt32LE(key >>> 0, c.EPOLL_EVENT_DATA);
    ev.writeUInt32LE(0, c.EPOLL_EVENT_DATA + 4);
    return c.epoll_ctl(this.epfd, op, fd, ev) < 0 ? this.errors.fail() : 0;
  }

  private static mask(interest: number): number {
    let ev = c.EPOLLET;
    if (interest & INTEREST_READABLE) ev |= c.EPOLLIN | c.EPOLLRDHUP;
    if (interest & INTEREST_WRITABLE) ev |= c.EPOLLOUT;
    return ev;
  }

  register(sock: number, key: number, interest: number): number {
    return this.ctl(c.EPOLL_CTL_ADD, sock, key, EpollSelector.mask(interest));
  }

  reregister(sock: number, key: number, interest: number): number {
    // EPOLL_CTL_MOD re-evaluates readiness: a ready socket fires again.
    return this.ctl(c.EPOLL_CTL_MOD, sock, key, EpollSelector.mask(interest));
  }

  deregister(sock: number): number {
    return this.ctl(c.EPOLL_CTL_DEL, sock, 0, 0);
  }

  forget(): void {
    // close() removes the socket from the epoll set (it is the only
    // reference to the open file: accept4/socket never dup).
  }

  wait(out: Uint32Array, max: number, timeoutMs: number): number {
    const n = c.epoll_wait(this.epfd, this.events, Math.min(max, MAX_EVENTS), timeoutMs) as number;
    if (n < 0) {
      const r = this.errors.fail();
      return r === fail(ErrorCode.WouldBlock) ? 0 : r; // EINTR: report nothing
    }
    const ev = this.events32;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const flags = ev[STRIDE * i]!;
      const key = ev[STRIDE * i + DATA]!;
      if (key === WAKE_KEY) {
        c.read(this.wakeTarget, this.drain, 8);
        continue;
      }
      let ready = 0;
      if (flags & c.EPOLLIN) ready |= READY_READABLE;
      if (flags & c.EPOLLOUT) ready |= READY_WRITABLE;
      if (flags & c.EPOLLRDHUP) ready |= READY_READ_CLOSED | READY_READABLE;
      if (flags & c.EPOLLHUP) ready |= READY_HANG_UP | READY_READABLE | READY_WRITABLE;
      if (flags & c.EPOLLERR) ready |= READY_ERROR | READY_READABLE | READY_WRITABLE;
      out[2 * count] = key;
      out[2 * count + 1] = ready;
      count++;
    }
    return count;
  }

  close(): void {
    c.close(this.epfd);
    c.close(this.wakeTarget);
  }
}

const WAKE_VALUE = new BigUint64Array([1n]);

export const epoll: BackendModule = {
  name: 'epoll',
  open(options: BackendOptions) {
    const errors = new OsErrors(LINUX);
    return compose('epoll', new EpollSelector(errors), new SocketOps(LINUX, errors, options));
  },
  wake(target: number) {
    c.write(target, WAKE_VALUE, 8);
  },
  closeDescriptor(fd: number) {
    c.close(fd);
  },
  reserve(addr: SocketAddress, out: SocketAddress) {
    return new SocketOps(LINUX, new OsErrors(LINUX), null).reserve(addr, out);
  },
  inherit(fd: number, addr: SocketAddress) {
    return new SocketOps(LINUX, new OsErrors(LINUX), null).inherit(fd, addr);
  },
};
