/**
 * koffi declarations of the macOS and FreeBSD libc calls wasmux uses, and
 * their constants. Loaded only on those systems (host/backends/index.ts
 * imports the kqueue backend lazily); the Linux counterpart is libc-linux.ts.
 *
 * Same conventions as libc-linux.ts: `ssize_t` is `intptr_t`, guest-memory
 * buffers are plain addresses (`uintptr_t`), small out-structs are Buffers.
 *
 * Where each constant comes from (values read from the headers, not
 * guessed):
 * - xnu bsd/sys/socket.h: SOL_SOCKET 0xffff, SO_REUSEADDR 0x0004,
 *   SO_REUSEPORT 0x0200, SO_NOSIGPIPE 0x1022, SO_SNDBUF 0x1001, AF_INET6 30; struct sockaddr
 *   starts with sa_len (u8), sa_family (u8). No SOCK_NONBLOCK/SOCK_CLOEXEC,
 *   no accept4, no MSG_NOSIGNAL in the SDKs wasmux targets: fcntl(2) and the
 *   SO_NOSIGPIPE socket option instead.
 * - FreeBSD sys/sys/socket.h: SOCK_CLOEXEC 0x10000000, SOCK_NONBLOCK
 *   0x20000000, SO_REUSEADDR 0x0004, SO_REUSEPORT 0x0200, SO_NOSIGPIPE
 *   0x0800, SO_SNDBUF 0x1001, AF_INET6 28, MSG_NOSIGNAL 0x20000; accept4(2) since FreeBSD 10.
 * - Both: netinet/in.h IPPROTO_TCP 6, IPPROTO_IPV6 41; netinet/tcp.h
 *   TCP_NODELAY 1; netinet6/in6.h IPV6_V6ONLY 27 (Linux: 26); sys/fcntl.h
 *   F_GETFD 1, F_SETFD 2, F_GETFL 3, F_SETFL 4, FD_CLOEXEC 1, O_NONBLOCK
 *   0x0004 (Linux: 0x800); sys/poll.h POLLIN 0x1, POLLOUT 0x4, POLLERR 0x8,
 *   POLLHUP 0x10, POLLNVAL 0x20 (no POLLRDHUP), struct pollfd {int fd;
 *   short events; short revents} (8 bytes), nfds_t an unsigned int (Linux:
 *   unsigned long).
 */
import koffi from 'koffi';

export const platform = process.platform;
if (platform !== 'darwin' && platform !== 'freebsd') {
  throw new Error(`wasmux: libc-bsd.ts loaded on ${platform}`);
}
const darwin = platform === 'darwin';

/** Where libc lives: libSystem on macOS (in the dyld shared cache), libc.so.7 on FreeBSD. */
export const LIBC_PATH = darwin ? '/usr/lib/libSystem.B.dylib' : 'libc.so.7';
export const libc = koffi.load(LIBC_PATH);

export const errno = (): number => koffi.errno();
export const errnoSet = (value: number): number => koffi.errno(value);

export const socket = libc.func('int socket(int domain, int type, int protocol)');
export const bind = libc.func('int bind(int fd, void *addr, uint32_t len)');
export const listen = libc.func('int listen(int fd, int backlog)');
export const accept = libc.func('int accept(int fd, void *addr, void *len)');
/** FreeBSD only (macOS has no accept4). */
export const accept4 = darwin ? null : libc.func('int accept4(int fd, void *addr, void *len, int flags)');
export const connect = libc.func('int connect(int fd, void *addr, uint32_t len)');
export const recv = libc.func('intptr_t recv(int fd, uintptr_t buf, uintptr_t len, int flags)');
export const send = libc.func('intptr_t send(int fd, uintptr_t buf, uintptr_t len, int flags)');
export const shutdown = libc.func('int shutdown(int fd, int how)');
export const close = libc.func('int close(int fd)');
export const setsockopt = libc.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)');
export const getsockname = libc.func('int getsockname(int fd, void *addr, void *len)');
export const getsockopt = libc.func('int getsockopt(int fd, int level, int name, void *value, void *len)');
export const getpeername = libc.func('int getpeername(int fd, void *addr, void *len)');
export const read = libc.func('intptr_t read(int fd, void *buf, uintptr_t len)');
export const write = libc.func('intptr_t write(int fd, void *buf, uintptr_t len)');
export const pipe = libc.func('int pipe(void *fds)');
export const poll = libc.func('int poll(void *fds, uint32_t nfds, int timeout)');
// Variadic in C: declared so, because Apple's arm64 ABI passes variadic
// arguments on the stack, not in registers. Call as fcntl(fd, cmd, 'int', arg).
export const fcntl = libc.func('int fcntl(int fd, int cmd, ...)');

export const AF_INET = 2;
export const AF_INET6 = darwin ? 30 : 28;
export const SOCK_STREAM = 1;
/** 0 on macOS: there the flags are set with fcntl after socket(). */
export const SOCK_NONBLOCK = darwin ? 0 : 0x20000000;
export const SOCK_CLOEXEC = darwin ? 0 : 0x10000000;
export const SOL_SOCKET = 0xffff;
export const SO_REUSEADDR = 0x0004;
export const SO_REUSEPORT = 0x0200;
export const SO_SNDBUF = 0x1001;
/** getsockopt: non-zero on a listening socket (sys/socket.h). */
export const SO_ACCEPTCONN = 0x0002;
export const SO_NOSIGPIPE = darwin ? 0x1022 : 0x0800;
export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
export const TCP_NODELAY = 1;
export const IPV6_V6ONLY = 27;
/** 0 on macOS (no MSG_NOSIGNAL there: SO_NOSIGPIPE is set on every socket instead). */
export const MSG_NOSIGNAL = darwin ? 0 : 0x20000;

export const F_GETFD = 1;
/** A new descriptor for the same open file, close-on-exec: macOS sys/fcntl.h 67, FreeBSD 17. */
export const F_DUPFD_CLOEXEC = darwin ? 67 : 17;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;
export const O_NONBLOCK = 0x0004;

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const POLLFD_SIZE = 8;
