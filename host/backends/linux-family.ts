/**
 * The socket half of the backend contract on Linux (shared by every backend
 * that runs on Linux: epoll, poll(2), and kqueue through libkqueue). The
 * logic is socket-ops.ts, shared with macOS and FreeBSD; this file supplies
 * Linux's calls and constants.
 */
import * as c from '../ffi/libc-linux.js';
import { ERRNO, errnoToErrorCode, errnoName } from '../ffi/errno-linux.js';
import type { BackendOptions } from './backend.js';
import { SocketOps, type SocketOs } from './socket-ops.js';

const NONBLOCK_CLOEXEC = c.SOCK_NONBLOCK | c.SOCK_CLOEXEC;

const LINUX: SocketOs = {
  errno: c.errno,
  errnoToErrorCode,
  errnoName,
  stream: (v6) => c.socket(v6 ? c.AF_INET6 : c.AF_INET, c.SOCK_STREAM | NONBLOCK_CLOEXEC, 0),
  accept: (listener, addr, addrLen) => c.accept4(listener, addr, addrLen, NONBLOCK_CLOEXEC),
  bind: c.bind,
  listen: c.listen,
  connect: c.connect,
  recv: c.recv,
  send: c.send,
  shutdown: c.shutdown,
  close: c.close,
  setsockopt: c.setsockopt,
  getsockname: c.getsockname,
  getpeername: c.getpeername,
  sendFlags: c.MSG_NOSIGNAL,
  EINPROGRESS: ERRNO.value.EINPROGRESS,
  AF_INET: c.AF_INET,
  AF_INET6: c.AF_INET6,
  SOL_SOCKET: c.SOL_SOCKET,
  SO_REUSEADDR: c.SO_REUSEADDR,
  SO_SNDBUF: c.SO_SNDBUF,
  SO_REUSEPORT: c.SO_REUSEPORT,
  IPPROTO_TCP: c.IPPROTO_TCP,
  TCP_NODELAY: c.TCP_NODELAY,
  IPPROTO_IPV6: c.IPPROTO_IPV6,
  IPV6_V6ONLY: c.IPV6_V6ONLY,
  sockaddrHasLength: false,
};

export class PosixSockets extends SocketOps {
  constructor(options: BackendOptions | null) {
    super(LINUX, options);
  }
}
