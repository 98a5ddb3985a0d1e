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
/** Declared with an int third argument: wasmux calls it only so (F_DUPFD_CLOEXEC). */
export const fcntl = libc.func('int fcntl(int fd, int cmd, int arg)');
/** fcntl: a new descriptor for the same open socket, close-on-exec (asm-generic/fcntl.h: F_LINUX_SPECIFIC_BASE 1024 + 6). */
export const F_DUPFD_CLOEXEC = 1030;
export const setsockopt = libc.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)');
export const getsockname = libc.func('int getsockname(int fd, void *addr, void *len)');
export const getsockopt = libc.func('int getsockopt(int fd, int level, int name, void *value, void *len)');
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
/**
 * struct epoll_event { u32 events; u64 data; }: packed on x86-64 (12 bytes,
 * data at 4), naturally aligned elsewhere (arm64: 16 bytes, data at 8).
 * Checked against the kernel at load (below).
 */
export const EPOLL_EVENT_SIZE = process.arch === 'x64' ? 12 : 16;
export const EPOLL_EVENT_DATA = process.arch === 'x64' ? 4 : 8;

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
/** getsockopt: 1 on a listening socket. */
export const SO_ACCEPTCONN = 30;
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

// The kernel writes two epoll_events for two ready eventfds registered with
// known data: both must read back where EPOLL_EVENT_SIZE and
// EPOLL_EVENT_DATA say (a wrong stride misplaces the second, a wrong
// offset the data of both).
function checkEpollEventLayout(): void {
  const ep = epoll_create1(EPOLL_CLOEXEC) as number;
  const fds = [eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK) as number, eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK) as number];
  try {
    if (ep < 0 || fds.some((fd) => fd < 0))
      throw new Error(`wasmux: epoll_create1/eventfd failed (errno ${errno()}) checking struct epoll_event`);
    const ev = Buffer.alloc(Math.max(16, EPOLL_EVENT_SIZE));
    const marks = [0x1234567890abcn, 0x0fedcba987654n];
    fds.forEach((fd, i) => {
      ev.fill(0);
      ev.writeUInt32LE(EPOLLIN, 0);
      ev.writeBigUInt64LE(marks[i]!, EPOLL_EVENT_DATA);
      if ((epoll_ctl(ep, 1 /* EPOLL_CTL_ADD */, fd, ev) as number) < 0)
        throw new Error(`wasmux: epoll_ctl failed (errno ${errno()}) checking struct epoll_event`);
    });
    const out = Buffer.alloc(EPOLL_EVENT_SIZE * 2);
    const n = epoll_wait(ep, out, 2, 0) as number;
    const got = new Set<bigint>();
    for (let i = 0; i < n; i++) {
      if ((out.readUInt32LE(i * EPOLL_EVENT_SIZE) & EPOLLIN) === 0) break;
      got.add(out.readBigUInt64LE(i * EPOLL_EVENT_SIZE + EPOLL_EVENT_DATA));
    }
    if (n !== 2 || !marks.every((m) => got.has(m))) {
      throw new Error(`wasmux: struct epoll_event is not ${EPOLL_EVENT_SIZE} bytes with data at ${EPOLL_EVENT_DATA} on ${process.arch}`);
    }
  } finally {
    for (const fd of [...fds, ep]) if (fd >= 0) close(fd);
  }
}
checkEpollEventLayout();
if (koffi.sizeof(koffi.struct({ fd: 'int', events: 'short', revents: 'short' })) !== POLLFD_SIZE) {
  throw new Error('wasmux: unexpected struct pollfd size');
}
