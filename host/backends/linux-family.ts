/**
 * The Linux socket family: libc's calls and constants, and Linux's errno
 * table, for socket-ops.ts and the selectors that run on any family
 * (poll.ts; kqueue.ts through a kqueue library).
 */
import * as c from '../ffi/libc-linux.js';
import { ERRNO, errnoToErrorCode, errnoName } from '../ffi/errno-linux.js';
import type { PosixFamily } from './socket-ops.js';

const NONBLOCK_CLOEXEC = c.SOCK_NONBLOCK | c.SOCK_CLOEXEC;

export const LINUX: PosixFamily = {
  name: 'linux',
  errno: c.errno,
  errnoToErrorCode,
  errnoName,
  E: ERRNO.value,
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
  AF_INET: c.AF_INET,
  AF_INET6: c.AF_INET6,
  SOL_SOCKET: c.SOL_SOCKET,
  SO_REUSEADDR: c.SO_REUSEADDR,
  SO_SNDBUF: c.SO_SNDBUF,
  SO_REUSEPORT: c.SO_REUSEPORT,
  getsockopt: c.getsockopt,
  SO_ACCEPTCONN: c.SO_ACCEPTCONN,
  IPPROTO_TCP: c.IPPROTO_TCP,
  TCP_NODELAY: c.TCP_NODELAY,
  IPPROTO_IPV6: c.IPPROTO_IPV6,
  IPV6_V6ONLY: c.IPV6_V6ONLY,
  sockaddrHasLength: false,
  cloexec: () => {},
  duplicate: (fd) => c.fcntl(fd, c.F_DUPFD_CLOEXEC, 0),
  poll: c.poll,
  read: c.read,
  write: c.write,
  pipe: (fds) => c.pipe2(fds, c.O_NONBLOCK | c.O_CLOEXEC),
  POLLIN: c.POLLIN,
  POLLOUT: c.POLLOUT,
  POLLERR: c.POLLERR,
  POLLHUP: c.POLLHUP,
  POLLNVAL: c.POLLNVAL,
  POLLRDHUP: c.POLLRDHUP,
  POLLFD_SIZE: c.POLLFD_SIZE,
};
