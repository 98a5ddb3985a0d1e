/**
 * The backend contract: what every I/O backend (epoll, kqueue, IOCP,
 * poll(2)) provides, modelled on mio's selector plus the socket calls the
 * WIT `tcp` interface needs. A backend knows nothing of guests, handles,
 * policy or workers: it deals in OS sockets and opaque u32 keys.
 *
 * A backend is composed, not inherited (compose() below): a Selector (the
 * readiness mechanism and its waker: epoll.ts, kqueue.ts, iocp.ts,
 * poll.ts) and the socket operations of the OS family (socket-ops.ts over
 * linux-family.ts or bsd-family.ts; win-sockets.ts). Any selector of a
 * family runs with that family's sockets: poll(2) on Linux and the BSDs,
 * kqueue on the BSDs and (through a kqueue library) on Linux.
 *
 * Return values: a non-negative number is success (a socket, a byte count,
 * an event count, 0); a negative number is `fail(ErrorCode)` (below; the
 * codes are wit/poll.wit's error-code, host/generated/contract.ts), already
 * translated from the OS's error by the backend's errno table. No method
 * throws for an OS failure.
 *
 * Readiness semantics (the guest's contract, see wit/poll.wit):
 * edge-triggered. After an event the consumer drains until would-block; a
 * backend may report spurious events but must never miss a transition to
 * ready that happens after a would-block. One event per key per `wait`.
 */
import type { SocketAddress } from './address.js';
import { ErrorCode } from '../generated/contract.js';

/**
 * Encodes an error code as a negative return value (-1 - code): results
 * that may fail carry no error object, so the hot path allocates none.
 */
export function fail(code: ErrorCode): number {
  return -1 - code;
}

/** Decodes a negative return value made by `fail`. */
export function codeOf(result: number): ErrorCode {
  return (-1 - result) as ErrorCode;
}

export type BackendName = 'epoll' | 'iocp' | 'kqueue' | 'poll';

/**
 * Keys from here up are the selectors' own (a waker's); consumers' keys stay
 * below (the host's handles keep bit 31 clear: sandbox/handle-table.ts).
 */
export const FIRST_RESERVED_KEY = 2 ** 31;

/** What register says for a socket it already watches, and what reregister and deregister say for one it does not. */
export const ALREADY_REGISTERED = fail(ErrorCode.Closed);
export const NOT_REGISTERED = fail(ErrorCode.Closed);

/** The readiness half of a backend: one per instance thread. */
export interface Selector {
  register(sock: number, key: number, interest: number): number;
  reregister(sock: number, key: number, interest: number): number;
  deregister(sock: number): number;
  drained?(sock: number, interest: number): void;
  wait(out: Uint32Array, max: number, timeoutMs: number): number;
  /** The socket is about to be closed: drop whatever is kept for it (registered or not; no error). */
  forget(sock: number): void;
  readonly ownDescriptors: readonly number[];
  readonly wakeTarget: number;
  close(): void;
}

/** The socket half of a backend: the OS family's calls, with the same conventions (fail() results, no throw). */
export interface Sockets {
  listen(addr: SocketAddress, backlog: number, shared: boolean): number;
  accept(listener: number, peer: SocketAddress): number;
  connect(addr: SocketAddress): number;
  recv(sock: number, ptr: number, len: number): number;
  /** recv without taking the bytes (MSG_PEEK): they stay queued for the next recv. */
  peek(sock: number, ptr: number, len: number): number;
  send(sock: number, ptr: number, len: number): number;
  shutdown(sock: number, how: number): number;
  /** Closes the socket (its selector has forgotten it first). */
  close(sock: number): void;
  localAddress(sock: number, out: SocketAddress): number;
  peerAddress(sock: number, out: SocketAddress): number;
  /** BackendModule.reserve's work. */
  reserve(addr: SocketAddress, out: SocketAddress): number;
  /** The OS error behind the most recent `other` result, from either half (they record into one place). */
  lastOsError(): string;
}

/**
 * A backend from its two halves. The methods are the halves' own, bound:
 * a call costs what calling the half directly costs.
 */
export function compose(name: BackendName, selector: Selector, sockets: Sockets): Backend {
  const backend: Backend = {
    name,
    ownDescriptors: selector.ownDescriptors,
    wakeTarget: selector.wakeTarget,
    register: selector.register.bind(selector),
    reregister: selector.reregister.bind(selector),
    deregister: selector.deregister.bind(selector),
    wait: selector.wait.bind(selector),
    close: selector.close.bind(selector),
    listen: sockets.listen.bind(sockets),
    accept: sockets.accept.bind(sockets),
    connect: sockets.connect.bind(sockets),
    recv: sockets.recv.bind(sockets),
    peek: sockets.peek.bind(sockets),
    send: sockets.send.bind(sockets),
    shutdown: sockets.shutdown.bind(sockets),
    localAddress: sockets.localAddress.bind(sockets),
    peerAddress: sockets.peerAddress.bind(sockets),
    lastOsError: sockets.lastOsError.bind(sockets),
    closeSocket(sock: number): void {
      selector.forget(sock);
      sockets.close(sock);
    },
  };
  if (selector.drained) backend.drained = selector.drained.bind(selector);
  return backend;
}

export interface Backend {
  /** `sim`: the in-memory network of a simulation (host/sim/), never a BackendModule (`wasmux run` cannot choose it). */
  readonly name: BackendName | 'sim';

  // ---- selector ---------------------------------------------------------------

  /**
   * Watches `sock` for `interest` (WIT interest bits) and reports events
   * under `key` (below FIRST_RESERVED_KEY). A socket already registered:
   * ALREADY_REGISTERED; reregister or deregister of one that is not:
   * NOT_REGISTERED.
   */
  register(sock: number, key: number, interest: number): number;
  /** Replaces key and interest of a registered socket; re-arms its edges. */
  reregister(sock: number, key: number, interest: number): number;
  /** Stops watching `sock`. */
  deregister(sock: number): number;
  /**
   * The consumer found `sock` drained in the direction of `interest` (a
   * would-block, or a short read or write): the point where a backend whose
   * OS does not report the next edge by itself (poll(2), IOCP's AFD polls)
   * re-arms that direction, as mio's `do_io` does. Optional: epoll and
   * kqueue report edges on their own.
   */
  drained?(sock: number, interest: number): void;
  /**
   * Blocks up to `timeoutMs` (-1: forever) until an event or a wake-up, then
   * writes up to `max` events into `out` as pairs (key, WIT readiness bits)
   * and returns how many. Returns 0 on timeout and on a wake-up (the caller
   * decides what a wake-up meant).
   */
  wait(out: Uint32Array, max: number, timeoutMs: number): number;
  /**
   * Descriptors the backend itself owns (its poller and waker). The host
   * records them so that it can close them if the worker dies.
   */
  readonly ownDescriptors: readonly number[];
  /** Passed to `BackendModule.wake` from another thread to end a `wait`. */
  readonly wakeTarget: number;
  /** Closes the poller and the waker. Sockets are closed by their owner. */
  close(): void;

  // ---- sockets --------------------------------------------------------------------
  // Every socket is non-blocking and close-on-exec. Streams have TCP_NODELAY
  // and the send buffer size of BackendOptions.

  /**
   * A listening socket on `addr`. `shared` sets SO_REUSEPORT (several
   * workers listening on one port). On Windows (no SO_REUSEPORT) `shared`
   * listens on a duplicate of the socket `reserve` bound (see iocp.ts).
   */
  listen(addr: SocketAddress, backlog: number, shared: boolean): number;
  /** Accepts one connection; fills `peer`. */
  accept(listener: number, peer: SocketAddress): number;
  /** Starts a non-blocking connect; success means "in progress or done". */
  connect(addr: SocketAddress): number;
  /** Receives into memory at absolute address `ptr`. 0 = end of stream. */
  recv(sock: number, ptr: number, len: number): number;
  /**
   * Like recv, but the bytes stay queued (MSG_PEEK): how the host finds
   * the end of a PROXY protocol header without reading past it
   * (sandbox/instance-host.ts). Optional: the simulated network has none
   * (a policy with proxyProtocol cannot run there).
   */
  peek?(sock: number, ptr: number, len: number): number;
  /** Sends from memory at absolute address `ptr`; never raises SIGPIPE. */
  send(sock: number, ptr: number, len: number): number;
  /** how: 0 receive, 1 send, 2 both (the WIT shutdown-how). */
  shutdown(sock: number, how: number): number;
  /** Closes a socket (deregistering it from this backend first if needed). */
  closeSocket(sock: number): void;
  localAddress(sock: number, out: SocketAddress): number;
  peerAddress(sock: number, out: SocketAddress): number;
  /** The OS error number behind the most recent `other` result (for logs). */
  lastOsError(): string;
}

/** Settings fixed when a backend is opened (from the plugin's policy). */
export interface BackendOptions {
  /**
   * SO_SNDBUF for every accepted or connected socket: bounds what a peer
   * that never reads can make the kernel hold for one connection.
   */
  readonly sendBufferBytes: number;
  /**
   * Where the backend records a socket it is creating, in the same step that
   * creates it (before any further call), until its caller has taken it over
   * or the backend has closed it again (-1: none). The host passes a cell of
   * the registry the supervisor closes after a dead worker: a thread that
   * fails in between (a stack overflow in the host's own code) cannot leave a
   * socket nobody knows of. One cell: a thread creates one socket at a time.
   */
  readonly creating?: Float64Array;
}

/** What a backend file exports: construction, and calls safe from any thread. */
export interface BackendModule {
  readonly name: BackendName;
  open(options: BackendOptions): Backend;
  /** Ends a `wait` in progress on another thread. */
  wake(wakeTarget: number): void;
  /** Closes a descriptor left behind by a dead worker. */
  closeDescriptor(fd: number): void;
  /**
   * Binds (without listening) a socket that reserves `addr` for
   * SO_REUSEPORT listeners; resolves port 0. Returns the socket or fail().
   * iocp: bound with SO_EXCLUSIVEADDRUSE; each instance listens on its own
   * duplicate of it (see iocp.ts).
   */
  reserve(addr: SocketAddress, out: SocketAddress): number;
  /**
   * A second descriptor (close-on-exec) for the listening socket `fd`, which
   * another thread of this process holds, for an instance of a new version
   * to listen on (PluginServer.reload): the socket stays in its SO_REUSEPORT
   * group, and the connections queued on it, through the handover. -1 when
   * it cannot, or need not: iocp, whose instances all listen on duplicates
   * of the one reserved socket, which the supervisor holds anyway. Checked
   * first: `fd` must still be a listening socket bound to `addr`.
   */
  inherit(fd: number, addr: SocketAddress): number;
}
