/**
 * The macOS and FreeBSD socket family: the BSD calls and constants of
 * host/ffi/libc-bsd.ts and the BSD errno table, for socket-ops.ts and the
 * selectors that run on any family (poll.ts, kqueue.ts).
 *
 * What differs from Linux, and how it is met here:
 * - sockaddr starts with a length byte (socket-ops.ts writes it);
 * - FreeBSD creates sockets with SOCK_NONBLOCK | SOCK_CLOEXEC and accepts
 *   with accept4, as Linux does; macOS has neither, so a new socket takes
 *   two fcntl calls, and an accepted one one (FD_CLOEXEC: O_NONBLOCK is
 *   inherited from the listener on the BSDs, which mio relies on too);
 * - no SIGPIPE: MSG_NOSIGNAL on every send on FreeBSD, the SO_NOSIGPIPE
 *   option on every socket on macOS (which has no MSG_NOSIGNAL);
 * - several listeners on one port: SO_REUSEPORT. Unlike Linux's, the BSDs'
 *   does not spread connections: the listener bound last gets them all, so
 *   --workers N serves correctly but unevenly here. FreeBSD's
 *   SO_REUSEPORT_LB would balance, but in_pcbinshash (sys/netinet/in_pcb.c)
 *   adds a socket to its load-balancing group at bind(2), not listen(2),
 *   and the supervisor holds a bound, never-listening socket on every port
 *   (plugin-server.ts, reserve): connections hashed to it would be reset.
 */
import * as c from '../ffi/libc-bsd.js';
import { ERRNO, errnoToErrorCode, errnoName } from '../ffi/errno-bsd.js';
import type { PosixFamily } from './socket-ops.js';

const darwin = c.platform === 'darwin';
const one = Buffer.from([1, 0, 0, 0]);

// macOS: make `fd` close-on-exec and SIGPIPE-free (and non-blocking when
// `nonblock`); closes it and returns -1 (errno kept) if any step fails.
function prepare(fd: number, nonblock: boolean): number {
  if (fd < 0) return fd;
  let flags = 0;
  if (
    c.fcntl(fd, c.F_SETFD, 'int', c.FD_CLOEXEC) < 0 ||
    (nonblock && ((flags = c.fcntl(fd, c.F_GETFL)) < 0 || c.fcntl(fd, c.F_SETFL, 'int', flags | c.O_NONBLOCK) < 0)) ||
    c.setsockopt(fd, c.SOL_SOCKET, c.SO_NOSIGPIPE, one, 4) < 0
  ) {
    const e = c.errno();
    c.close(fd);
    c.errnoSet(e);
    return -1;
  }
  return fd;
}

const NONBLOCK_CLOEXEC = c.SOCK_NONBLOCK | c.SOCK_CLOEXEC;

// Both ends of a new pipe non-blocking and close-on-exec (macOS has no
// pipe2; FreeBSD's would do, one code path serves both). Once per backend.
function pipe(fds: Buffer): number {
  if (c.pipe(fds) < 0) return -1;
  for (const fd of [fds.readInt32LE(0), fds.readInt32LE(4)]) {
    const flags = c.fcntl(fd, c.F_GETFL);
    if (flags < 0 || c.fcntl(fd, c.F_SETFL, 'int', flags | c.O_NONBLOCK) < 0 || c.fcntl(fd, c.F_SETFD, 'int', c.FD_CLOEXEC) < 0) {
      const e = c.errno();
      c.close(fds.readInt32LE(0));
      c.close(fds.readInt32LE(4));
      c.errnoSet(e);
      return -1;
    }
  }
  return 0;
}

export const BSD: PosixFamily = {
  name: c.platform,
  errno: c.errno,
  errnoToErrorCode,
  errnoName,
  E: ERRNO.value,
  stream: darwin
    ? (v6) => prepare(c.socket(v6 ? c.AF_INET6 : c.AF_INET, c.SOCK_STREAM, 0), true)
    : (v6) => c.socket(v6 ? c.AF_INET6 : c.AF_INET, c.SOCK_STREAM | NONBLOCK_CLOEXEC, 0),
  accept: darwin
    ? (listener, addr, addrLen) => prepare(c.accept(listener, addr, addrLen), false)
    : (listener, addr, addrLen) => c.accept4!(listener, addr, addrLen, NONBLOCK_CLOEXEC),
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
  sockaddrHasLength: true,
  cloexec: (fd) => void c.fcntl(fd, c.F_SETFD, 'int', c.FD_CLOEXEC),
  duplicate: (fd) => c.fcntl(fd, c.F_DUPFD_CLOEXEC, 'int', 0),
  poll: c.poll,
  read: c.read,
  write: c.write,
  pipe,
  POLLIN: c.POLLIN,
  POLLOUT: c.POLLOUT,
  POLLERR: c.POLLERR,
  POLLHUP: c.POLLHUP,
  POLLNVAL: c.POLLNVAL,
  POLLRDHUP: 0,
  POLLFD_SIZE: c.POLLFD_SIZE,
};
