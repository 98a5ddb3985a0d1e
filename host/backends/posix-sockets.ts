/**
 * The socket half of the backend contract on Linux (shared by every backend
 * that runs on Linux: epoll today, poll(2) and libkqueue later).
 */
import * as c from '../ffi/libc-linux.js';
import { errnoToErrorCode, errnoName } from '../ffi/errno-linux.js';
import { fail } from '../wit/error-code.js';
import type { SocketAddress } from './address.js';
import type { BackendOptions } from './backend.js';

const SOCKADDR_MAX = 28; // sizeof(struct sockaddr_in6)

export class PosixSockets {
  // Scratch for sockaddr in/out and socklen_t; one set per backend (one per
  // thread), reused by every call.
  private readonly sa = Buffer.alloc(SOCKADDR_MAX);
  private readonly saLen = Buffer.alloc(4);
  private readonly one = Buffer.from([1, 0, 0, 0]);
  private readonly sendBuffer = Buffer.alloc(4);
  private lastErrno = 0;

  constructor(options: BackendOptions | null) {
    if (options) this.sendBuffer.writeInt32LE(options.sendBufferBytes, 0);
  }

  /** Per-connection options: no Nagle delay; the policy's send buffer. */
  private tune(fd: number): void {
    c.setsockopt(fd, c.IPPROTO_TCP, c.TCP_NODELAY, this.one, 4);
    if (this.sendBuffer.readInt32LE(0) > 0) c.setsockopt(fd, c.SOL_SOCKET, c.SO_SNDBUF, this.sendBuffer, 4);
  }

  protected failErrno(): number {
    this.lastErrno = c.errno();
    return fail(errnoToErrorCode(this.lastErrno));
  }

  lastOsError(): string {
    return errnoName(this.lastErrno);
  }

  listen(addr: SocketAddress, backlog: number, shared: boolean): number {
    const fd = this.bound(addr, shared);
    if (fd < 0) return fd;
    if (c.listen(fd, backlog) < 0) {
      const r = this.failErrno();
      c.close(fd);
      return r;
    }
    return fd;
  }

  /** A socket bound to `addr` (SO_REUSEADDR, SO_REUSEPORT when shared), not yet listening. */
  bound(addr: SocketAddress, shared: boolean): number {
    const fd = c.socket(addr.v6 ? c.AF_INET6 : c.AF_INET, c.SOCK_STREAM | c.SOCK_NONBLOCK | c.SOCK_CLOEXEC, 0);
    if (fd < 0) return this.failErrno();
    const len = this.encode(addr);
    if (
      c.setsockopt(fd, c.SOL_SOCKET, c.SO_REUSEADDR, this.one, 4) < 0 ||
      (shared && c.setsockopt(fd, c.SOL_SOCKET, c.SO_REUSEPORT, this.one, 4) < 0) ||
      (addr.v6 && c.setsockopt(fd, c.IPPROTO_IPV6, c.IPV6_V6ONLY, this.one, 4) < 0) ||
      c.bind(fd, this.sa, len) < 0
    ) {
      const r = this.failErrno();
      c.close(fd);
      return r;
    }
    return fd;
  }

  accept(listener: number, peer: SocketAddress): number {
    this.saLen.writeUInt32LE(SOCKADDR_MAX, 0);
    const fd = c.accept4(listener, this.sa, this.saLen, c.SOCK_NONBLOCK | c.SOCK_CLOEXEC);
    if (fd < 0) return this.failErrno();
    this.tune(fd);
    this.decode(peer);
    return fd;
  }

  connect(addr: SocketAddress): number {
    const fd = c.socket(addr.v6 ? c.AF_INET6 : c.AF_INET, c.SOCK_STREAM | c.SOCK_NONBLOCK | c.SOCK_CLOEXEC, 0);
    if (fd < 0) return this.failErrno();
    this.tune(fd);
    const len = this.encode(addr);
    if (c.connect(fd, this.sa, len) < 0) {
      const e = c.errno();
      if (e !== 115 /* EINPROGRESS */) {
        this.lastErrno = e;
        c.close(fd);
        return fail(errnoToErrorCode(e));
      }
    }
    return fd;
  }

  recv(sock: number, ptr: number, len: number): number {
    const n = c.recv(sock, ptr, len, 0) as number;
    return n >= 0 ? n : this.failErrno();
  }

  send(sock: number, ptr: number, len: number): number {
    const n = c.send(sock, ptr, len, c.MSG_NOSIGNAL) as number;
    return n >= 0 ? n : this.failErrno();
  }

  shutdown(sock: number, how: number): number {
    // WIT shutdown-how (receive, send, both) is SHUT_RD, SHUT_WR, SHUT_RDWR.
    return c.shutdown(sock, how) < 0 ? this.failErrno() : 0;
  }

  localAddress(sock: number, out: SocketAddress): number {
    this.saLen.writeUInt32LE(SOCKADDR_MAX, 0);
    if (c.getsockname(sock, this.sa, this.saLen) < 0) return this.failErrno();
    this.decode(out);
    return 0;
  }

  peerAddress(sock: number, out: SocketAddress): number {
    this.saLen.writeUInt32LE(SOCKADDR_MAX, 0);
    if (c.getpeername(sock, this.sa, this.saLen) < 0) return this.failErrno();
    this.decode(out);
    return 0;
  }

  private encode(addr: SocketAddress): number {
    const sa = this.sa;
    sa.fill(0);
    if (!addr.v6) {
      sa.writeUInt16LE(c.AF_INET, 0);
      sa.writeUInt16BE(addr.port, 2);
      for (let i = 0; i < 4; i++) sa[4 + i] = addr.groups[i]!;
      return 16;
    }
    sa.writeUInt16LE(c.AF_INET6, 0);
    sa.writeUInt16BE(addr.port, 2);
    for (let i = 0; i < 8; i++) sa.writeUInt16BE(addr.groups[i]!, 8 + 2 * i);
    return 28;
  }

  private decode(out: SocketAddress): void {
    const sa = this.sa;
    out.port = sa.readUInt16BE(2);
    if (sa.readUInt16LE(0) === c.AF_INET6) {
      out.v6 = true;
      for (let i = 0; i < 8; i++) out.groups[i] = sa.readUInt16BE(8 + 2 * i);
    } else {
      out.v6 = false;
      for (let i = 0; i < 4; i++) out.groups[i] = sa[4 + i]!;
      out.groups.fill(0, 4);
    }
  }
}
