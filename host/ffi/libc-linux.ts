/**
 * koffi declarations of the Linux libc calls wasmux uses, and their
 * constants. Nothing above host/ffi/ declares C functions.
 *
 * Conventions: `ssize_t` is declared `intptr_t`; buffers that live in guest
 * (wasm) memory are passed as plain addresses (`uintptr_t`, a JS number) so
 * the kernel reads and writes guest memory directly; small out-structs
 * (sockaddr, socklen_t) are Node Buffers owned by the caller.
 */
import koffi from 'koffi';

export const libc = koffi.load('libc.so.6');

export const errno = (): number => koffi.errno();

// epoll
export const epoll_create1 = libc.func('int epoll_create1(int flags)');
export const epoll_ctl = libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)');
export const epoll_wait = libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)');
export const eventfd = libc.func('int eventfd(unsigned int initval, int flags)');

// sockets
export const socket = libc.func('int socket(int domain, int type, int protocol)');
export const bind = libc.func('int bind(int fd, void *addr, uint32_t len)');
export const listen = libc.func('int listen(int fd, int backlog)');
export const accept4 = libc.func('int accept4(int fd, void *addr, void *len, int flags)');
export const connect = libc.func('int connect(int fd, void *addr, uint32_t len)');
export const recv = libc.func('intptr_t recv(int fd, uintptr_t buf, uintptr_t len, int flags)');
export const send = libc.func('intptr_t send(int fd, uintptr_t buf, uintptr_t len, int flags)');
export const shutdown = libc.func('int shutdown(int fd, int how)');
export const close = libc.func('int close(int fd)');
export const setsockopt = libc.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)');
export const getsockname = libc.func('int getsockname(int fd, void *addr, void *len)');
export const getpeername = libc.func('int getpeername(int fd, void *addr, void *len)');
export const write = libc.func('intptr_t write(int fd, void *buf, uintptr_t len)');
export const read = libc.func('intptr_t read(int fd, void *buf, uintptr_t len)');
export const poll = libc.func('int poll(void *fds, uint64_t nfds, int timeout)');
export const pipe2 = libc.func('int pipe2(void *fds, int flags)');

export const EPOLL_CLOEXEC = 0x80000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLL_CTL_MOD = 3;
export const EPOLLIN = 0x001;
export const EPOLLOUT = 0x004;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;
export const EPOLLRDHUP = 0x2000;
export const EPOLLET = 0x80000000;
/** struct epoll_event is packed on x86_64: u32 events, u64 data = 12 bytes. */
export const EPOLL_EVENT_SIZE = 12;

export const EFD_NONBLOCK = 0x800;
export const EFD_CLOEXEC = 0x80000;

// poll(2). POLLRDHUP is a Linux extension (the peer shut down its sending side).
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;
export const POLLRDHUP = 0x2000;
/** struct pollfd: int fd, short events, short revents = 8 bytes. */
export const POLLFD_SIZE = 8;
export const O_NONBLOCK = 0x800;
export const O_CLOEXEC = 0x80000;

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0x800;
export const SOCK_CLOEXEC = 0x80000;
export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_REUSEPORT = 15;
export const IPPROTO_TCP = 6;
export const IPPROTO_IPV6 = 41;
export const TCP_NODELAY = 1;
export const IPV6_V6ONLY = 26;
export const MSG_NOSIGNAL = 0x4000;
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

// Struct layouts this file relies on, checked once at load.
if (koffi.sizeof(koffi.pack({ events: 'uint32', data: 'uint64' })) !== EPOLL_EVENT_SIZE) {
  throw new Error('wasmux: unexpected struct epoll_event size');
}
if (koffi.sizeof(koffi.struct({ fd: 'int', events: 'short', revents: 'short' })) !== POLLFD_SIZE) {
  throw new Error('wasmux: unexpected struct pollfd size');
}
