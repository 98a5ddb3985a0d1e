/**
 * The socket half of a backend (backend.ts Sockets), written once for every
 * POSIX socket API. What differs between OS families comes in a
 * `PosixFamily`: the libc entry points, the constants, the first two bytes
 * of a sockaddr, how a new socket becomes non-blocking, close-on-exec and
 * SIGPIPE-free, and the errno table. Linux's is linux-family.ts, macOS's
 * and FreeBSD's bsd-family.ts; family.ts picks this OS's. This file loads no
 * library: it runs on any OS.
 */
import type { ErrorCode } from '../generated/contract.js';
import { fail, type BackendOptions, type Sockets } from './backend.js';
import { SocketAddress } from './address.js';

// A koffi function: the declarations live in host/ffi/ (koffi types its calls loosely).
// biome-ignore lint/suspicious/noExplicitAny: koffi functions take and return what their C declaration says
type CFunction = (...args: any[]) => any;

/** The errno numbers the backends test for by name (from the family's errno table). */
export type KnownErrno = 'EINPROGRESS' | 'EINTR' | 'ENOENT' | 'EPIPE' | 'EAGAIN';

export interface PosixFamily {
  /** 'linux' or 'bsd', for messages. */
  readonly name: string;
  readonly errno: () => number;
  readonly errnoToErrorCode: (errno: number) => ErrorCode;
  readonly errnoName: (errno: number) => string;
  readonly E: Readonly<Record<KnownErrno, number>>;
  /** A TCP socket that is non-blocking, close-on-exec and never raises SIGPIPE; -1 on failure. */
  readonly stream: (v6: boolean) => number;
  /** accept(2) with the same guarantees for the new socket; -1 on failure. */
  readonly accept: (listener: number, addr: Buffer, addrLen: Buffer) => number;
  readonly bind: CFunction;
  readonly listen: CFunction;
  readonly connect: CFunction;
  readonly recv: CFunction;
  readonly send: CFunction;
  readonly shutdown: CFunction;
  readonly close: CFunction;
  readonly setsockopt: CFunction;
  readonly getsockname: CFunction;
  readonly getpeername: CFunction;
  /** Flags for every send (MSG_NOSIGNAL where the OS has it). */
  readonly sendFlags: number;
  readonly AF_INET: number;
  readonly AF_INET6: number;
  readonly SOL_SOCKET: number;
  readonly SO_REUSEADDR: number;
  readonly SO_SNDBUF: number;
  /** The option that lets several listeners share a port (and spreads connections where the OS can). */
  readonly SO_REUSEPORT: number;
  readonly getsockopt: CFunction;
  readonly SO_ACCEPTCONN: number;
  readonly IPPROTO_TCP: number;
  readonly TCP_NODELAY: number;
  readonly IPPROTO_IPV6: number;
  readonly IPV6_V6ONLY: number;
  /**
   * BSD sockaddrs start with a length byte and a one-byte family (sa_len,
   * sa_family); Linux's with a two-byte family.
   */
  readonly sockaddrHasLength: boolean;
  /**
   * Marks a descriptor another library made close-on-exec (the kqueue).
   * Linux: nothing (a kqueue library there makes its own descriptors; every
   * one wasmux makes is close-on-exec at creation).
   */
  readonly cloexec: (fd: number) => void;
  /** A second, close-on-exec descriptor for the socket `fd` (the same open socket); -1 on failure. */
  readonly duplicate: (fd: number) => number;

  // For the poll(2) selector and the pipe waker (poll.ts), which run on every family.
  readonly poll: CFunction;
  readonly read: CFunction;
  readonly write: CFunction;
  /** A non-blocking, close-on-exec pipe into `fds` (two int32: read end, write end); -1 on failure. */
  readonly pipe: (fds: Buffer) => number;
  readonly POLLIN: number;
  readonly POLLOUT: number;
  readonly POLLERR: number;
  readonly POLLHUP: number;
  readonly POLLNVAL: number;
  /** The peer's FIN as a poll event (Linux's POLLRDHUP); 0 where the family has none (read-closed then shows as recv's 0). */
  readonly POLLRDHUP: number;
  readonly POLLFD_SIZE: number;
}

/**
 * Where a backend's halves record the OS error behind an `other` result, so
 * that lastOsError() names it whichever half failed.
 */
export class OsErrors {
  private last = 0;

  constructor(private readonly family: PosixFamily) {}

  /** Records errno and returns its translation (fail()). */
  fail(): number {
    return this.failWith(this.family.errno());
  }

  failWith(errno: number): number {
    this.last = errno;
    return fail(this.family.errnoToErrorCode(errno));
  }

  /** The name of the errno recorded last (for log lines and exceptions). */
  name(): string {
    return this.family.errnoName(this.last);
  }
}

/** recv's flag that leaves the bytes queued: the same value on Linux, the BSDs (and Windows). */
const MSG_PEEK = 2;
const SOCKADDR_MAX = 28; // sizeof(struct sockaddr_in6), the same on every OS here

export class SocketOps implements Sockets {
  // Scratch for sockaddr in/out and socklen_t; one set per backend (one per
  // thread), reused by every call.
  private readonly sa = Buffer.alloc(SOCKADDR_MAX);
  private readonly saLen = Buffer.alloc(4);
  private readonly one = Buffer.from([1, 0, 0, 0]);
  private readonly sendBuffer = Buffer.alloc(4);
  /** BackendOptions.creating (a private cell when the caller keeps no registry). */
  private readonly creating: Float64Array;

  constructor(
    private readonly os: PosixFamily,
    private readonly errors: OsErrors,
    options: BackendOptions | null,
  ) {
    if (options) this.sendBuffer.writeInt32LE(options.sendBufferBytes, 0);
    this.creating = options?.creating ?? new Float64Array(1);
  }

  /** Closes a socket this object created and its caller never took over: the record goes first. */
  private discard(fd: number): void {
    this.creating[0] = -1;
    this.os.close(fd);
  }

  /** Per-connection options: no Nagle delay; the policy's send buffer. */
  private tune(fd: number): void {
    const os = this.os;
    os.setsockopt(fd, os.IPPROTO_TCP, os.TCP_NODELAY, this.one, 4);
    if (this.sendBuffer.readInt32LE(0) > 0) os.setsockopt(fd, os.SOL_SOCKET, os.SO_SNDBUF, this.sendBuffer, 4);
  }

  private failErrno(): number {
    return this.errors.fail();
  }

  lastOsError(): string {
    return this.errors.name();
  }

  close(sock: number): void {
    this.os.close(sock);
  }

  listen(addr: SocketAddress, backlog: number, shared: boolean): number {
    const fd = this.bound(addr, shared);
    if (fd < 0) return fd;
    if (this.os.listen(fd, backlog) < 0) {
      const r = this.failErrno();
      this.discard(fd);
      return r;
    }
    return fd;
  }

  /**
   * BackendModule.reserve: a socket bound (not listening) to `addr` with
   * SO_REUSEPORT, its resolved address in `out`; the socket or fail().
   */
  reserve(addr: SocketAddress, out: SocketAddress): number {
    const fd = this.bound(addr, true);
    if (fd < 0) return fd;
    const r = this.localAddress(fd, out);
    if (r < 0) {
      this.discard(fd);
      return r;
    }
    return fd;
  }

  /**
   * BackendModule.inherit: a close-on-exec duplicate of `fd`, provided it
   * is still a listening socket bound to `addr`'s port (the number was
   * taken from an instance's report, and the guest may have closed that
   * listener since: the number could name another socket by now); -1 if not.
   */
  inherit(fd: number, addr: SocketAddress): number {
    const os = this.os;
    const copy = os.duplicate(fd);
    if (copy < 0) return -1;
    const value = Buffer.alloc(4);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(4, 0);
    const here = new SocketAddress();
    const listening = os.getsockopt(copy, os.SOL_SOCKET, os.SO_ACCEPTCONN, value, len) === 0 && value.readInt32LE(0) !== 0;
    if (!listening || this.localAddress(copy, here) < 0 || !here.equals(addr)) {
      os.close(copy);
      return -1;
    }
    return copy;
  }

  /** A socket bound to `addr` (SO_REUSEADDR, the shared-port option when shared), not yet listening. */
  private bound(addr: SocketAddress, shared: boolean): number {
    const os = this.os;
    const fd = os.stream(addr.v6);
    if (fd < 0) return this.failErrno();
    this.creating[0] = fd;
    const len = this.encode(addr);
    if (
      os.setsockopt(fd, os.SOL_SOCKET, os.SO_REUSEADDR, this.one, 4) < 0 ||
      (shared && os.setsockopt(fd, os.SOL_SOCKET, os.SO_REUSEPORT, this.one, 4) < 0) ||
      (addr.v6 && os.setsockopt(fd, os.IPPROTO_IPV6, os.IPV6_V6ONLY, this.one, 4) < 0) ||
      os.bind(fd, this.sa, len) < 0
    ) {
      const r = this.failErrno();
      this.discard(fd);
      return r;
    }
    return fd;
  }

  accept(listener: number, peer: SocketAddress): number {
    const os = this.os;
    this.saLen.writeUInt32LE(SOCKADDR_MAX, 0);
    const fd = os.accept(listener, this.sa, this.saLen);
    if (fd < 0) return this.failErrno();
    this.creating[0] = fd;
    this.tune(fd);
    this.decode(peer);
    return fd;
  }

  connect(addr: SocketAddress): number {
    const os = this.os;
    const fd = os.stream(addr.v6);
    if (fd < 0) return this.failErrno();
    this.creating[0] = fd;
    this.tune(fd);
    const len = this.encode(addr);
    if (os.connect(fd, this.sa, len) < 0) {
      const e = os.errno();
      if (e !== os.E.EINPROGRESS) {
        this.discard(fd);
        return this.errors.failWith(e);
      }
    }
    return fd;
  }

  recv(sock: number, ptr: number, len: number): number {
    const n = this.os.recv(sock, ptr, len, 0) as number;
    return n >= 0 ? n : this.failErrno();
  }

  peek(sock: number, ptr: number, len: number): number {
    const n = this.os.recv(sock, ptr, len, MSG_PEEK) as number;
    return n >= 0 ? n : this.failErrno();
  }

  send(sock: number, ptr: number, len: number): number {
    const n = this.os.send(sock, ptr, len, this.os.sendFlags) as number;
    return n >= 0 ? n : this.failErrno();
  }

  shutdown(sock: number, how: number): number {
    // WIT shutdown-how (receive, send, both) is SHUT_RD, SHUT_WR, SHUT_RDWR
    // (0, 1, 2 on Linux and the BSDs alike).
    return this.os.shutdown(sock, how) < 0 ? this.failErrno() : 0;
  }

  localAddress(sock: number, out: SocketAddress): number {
    this.saLen.writeUInt32LE(SOCKADDR_MAX, 0);
    if (this.os.getsockname(sock, this.sa, this.saLen) < 0) return this.failErrno();
    this.decode(out);
    return 0;
  }

  peerAddress(sock: number, out: SocketAddress): number {
    this.saLen.writeUInt32LE(SOCKADDR_MAX, 0);
    if (this.os.getpeername(sock, this.sa, this.saLen) < 0) return this.failErrno();
    this.decode(out);
    return 0;
  }

  // sockaddr_in: family @0 (BSD: len @0, family @1), port @2 (big-endian),
  // address @4, 16 bytes. sockaddr_in6: the same head, flowinfo @4, address
  // @8, scope @24, 28 bytes.
  private encode(addr: SocketAddress): number {
    const sa = this.sa;
    const os = this.os;
    sa.fill(0);
    const len = addr.v6 ? 28 : 16;
    const family = addr.v6 ? os.AF_INET6 : os.AF_INET;
    if (os.sockaddrHasLength) {
      sa[0] = len;
      sa[1] = family;
    } else {
      sa.writeUInt16LE(family, 0);
    }
    sa.writeUInt16BE(addr.port, 2);
    if (!addr.v6) for (let i = 0; i < 4; i++) sa[4 + i] = addr.groups[i]!;
    else for (let i = 0; i < 8; i++) sa.writeUInt16BE(addr.groups[i]!, 8 + 2 * i);
    return len;
  }

  private decode(out: SocketAddress): void {
    const sa = this.sa;
    out.port = sa.readUInt16BE(2);
    if ((this.os.sockaddrHasLength ? sa[1] : sa.readUInt16LE(0)) === this.os.AF_INET6) {
      out.v6 = true;
      for (let i = 0; i < 8; i++) out.groups[i] = sa.readUInt16BE(8 + 2 * i);
    } else {
      out.v6 = false;
      for (let i = 0; i < 4; i++) out.groups[i] = sa[4 + i]!;
      out.groups.fill(0, 4);
    }
  }
}
