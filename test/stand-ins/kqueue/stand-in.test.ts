// The kqueue stand-in itself (./kqueue.c), called directly: the BSD
// semantics the kqueue backend relies on, and that libkqueue mode really
// has libkqueue's two departures from them (otherwise the conformance
// cases that guard the backend against them would pass for nothing).
// Real sockets on 127.0.0.1 (blocking, which changes nothing for kevent).
import { describe, it, expect, afterEach } from 'vitest';
import koffi, { type LibraryHandle } from 'koffi';
import { readdirSync } from 'node:fs';
import {
  EVFILT_READ,
  EVFILT_WRITE,
  EV_ADD,
  EV_CLEAR,
  EV_DELETE,
  EV_EOF,
  EV_ERROR,
  EV_RECEIPT,
  KeventList,
  NOTE_TRIGGER,
} from '../../../dist/host/ffi/kevent.js';
import { QUIRKS_ENV, kqueueStandIn } from './build.js';

const standIn = kqueueStandIn();
const EVFILT_USER = -11;
const ENOENT = 2;
const EBADF = 9;
const SOL_SOCKET = 1;
const SO_LINGER = 13;

const declare = (libc: LibraryHandle) => ({
  socket: libc.func('int socket(int domain, int type, int protocol)'),
  bind: libc.func('int bind(int fd, void *addr, uint32_t len)'),
  listen: libc.func('int listen(int fd, int backlog)'),
  accept: libc.func('int accept(int fd, void *addr, void *len)'),
  connect: libc.func('int connect(int fd, void *addr, uint32_t len)'),
  send: libc.func('intptr_t send(int fd, void *buf, uintptr_t len, int flags)'),
  shutdown: libc.func('int shutdown(int fd, int how)'),
  close: libc.func('int close(int fd)'),
  getsockname: libc.func('int getsockname(int fd, void *addr, void *len)'),
  setsockopt: libc.func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)'),
});
// Linux's libc (the stand-in exists only there; elsewhere nothing here runs).
const c = 'libraries' in standIn ? declare(koffi.load('libc.so.6')) : (null as unknown as ReturnType<typeof declare>);

const opened: number[] = [];
const track = (fd: number) => {
  expect(fd).toBeGreaterThanOrEqual(0);
  opened.push(fd);
  return fd;
};

/** A connected TCP pair on 127.0.0.1: the client's end and the server's (accepted) end. */
function tcpPair(): { client: number; server: number } {
  const addr = Buffer.alloc(16);
  addr.writeUInt16LE(2, 0); // AF_INET
  addr.set([127, 0, 0, 1], 4); // port 0
  const listener = track(c.socket(2, 1, 0) as number);
  expect(c.bind(listener, addr, 16)).toBe(0);
  expect(c.listen(listener, 1)).toBe(0);
  expect(c.getsockname(listener, addr, Buffer.from([16, 0, 0, 0]))).toBe(0);
  const client = track(c.socket(2, 1, 0) as number);
  expect(c.connect(client, addr, 16)).toBe(0);
  const server = track(c.accept(listener, null, null) as number);
  return { client, server };
}

function sendText(fd: number, text: string): void {
  const b = Buffer.from(text);
  expect(c.send(fd, b, b.length, 0)).toBe(b.length);
}

interface Kevent {
  ident: number;
  filter: number;
  flags: number;
  fflags: number;
  data: number;
  udata: number;
}

function openKqueue(layout: 32 | 64, mode: 'bsd' | 'libkqueue') {
  if (!('libraries' in standIn)) throw new Error(standIn.skip);
  const lib = koffi.load(standIn.libraries[layout]);
  const kqueue = lib.func('int kqueue(void)');
  const kevent = lib.func('int kevent(int kq, void *changes, int nchanges, void *events, int nevents, void *timeout)');
  // Read by kqueue(): Node's process.env writes through to the C environment.
  process.env[QUIRKS_ENV] = mode === 'libkqueue' ? 'libkqueue' : '';
  const kq = track(kqueue() as number);
  delete process.env[QUIRKS_ENV];
  const changes = new KeventList(layout, 4);
  const out = new KeventList(layout, 8);
  const read = (l: KeventList, n: number): Kevent[] =>
    Array.from({ length: n }, (_, i) => ({
      ident: l.ident(i),
      filter: l.filter(i),
      flags: l.flags(i),
      fflags: l.fflags(i),
      data: l.data(i),
      udata: l.udata(i),
    }));
  const timespec = (ms: number) => {
    const t = Buffer.alloc(16);
    t.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
    t.writeBigInt64LE(BigInt((ms % 1000) * 1_000_000), 8);
    return t;
  };
  return {
    kq,
    kevent,
    /** Applies changes [ident, filter, flags, fflags?, udata?] and returns what kevent wrote (receipts). */
    change(list: [number, number, number, number?, number?][]): Kevent[] {
      list.forEach(([ident, filter, flags, fflags = 0, udata = 0], i) => changes.set(i, ident, filter, flags, fflags, 0, udata));
      const n = kevent(kq, changes.bytes, list.length, out.bytes, 8, null) as number;
      expect(n).toBeGreaterThanOrEqual(0);
      return read(out, n);
    },
    /** Triggers an EVFILT_USER event, as the backend's waker does: no event list, so no wait. */
    trigger(ident: number): void {
      changes.set(0, ident, EVFILT_USER, 0, NOTE_TRIGGER, 0, 0);
      expect(kevent(kq, changes.bytes, 1, null, 0, null)).toBe(0);
    },
    /** Waits up to `ms` (-1: forever) for events. */
    wait(ms: number): Kevent[] {
      const n = kevent(kq, null, 0, out.bytes, 8, ms < 0 ? null : timespec(ms)) as number;
      expect(n).toBeGreaterThanOrEqual(0);
      return read(out, n);
    },
  };
}

const ADD = EV_ADD | EV_CLEAR | EV_RECEIPT;
const DEL = EV_DELETE | EV_RECEIPT;
const ok = (receipts: Kevent[]) => receipts.map((r) => [r.flags, r.data]);

afterEach(() => {
  for (const fd of opened.splice(0)) c.close(fd);
});

describe.skipIf('skip' in standIn)(`kqueue stand-in${'skip' in standIn ? ` — skipped: ${standIn.skip}` : ''}`, () => {
  it.each([
    ['bsd', 'read first', true],
    ['bsd', 'write first', true],
    ['libkqueue', 'read first', false], // libkqueue (a): end of stream lost
    ['libkqueue', 'write first', true],
  ] as const)('%s mode, filters added %s: data and FIN in one edge -> EV_EOF %s', (mode, order, eof) => {
    const k = openKqueue(32, mode);
    const { client, server } = tcpPair();
    const filters = order === 'read first' ? [EVFILT_READ, EVFILT_WRITE] : [EVFILT_WRITE, EVFILT_READ];
    expect(ok(k.change(filters.map((f) => [server, f, ADD, 0, 7] as [number, number, number, number, number])))).toEqual([
      [EV_ERROR, 0],
      [EV_ERROR, 0],
    ]);
    expect(k.wait(0).map((e) => e.filter)).toEqual([EVFILT_WRITE]); // writable from the start
    sendText(client, 'hello');
    c.shutdown(client, 1); // SHUT_WR: FIN
    const events = k.wait(1000);
    const read = events.find((e) => e.filter === EVFILT_READ);
    expect(read).toEqual(expect.objectContaining({ ident: server, data: 5, udata: 7 }));
    expect((read!.flags & EV_EOF) !== 0).toBe(eof);
  });

  it.each([
    ['bsd', true],
    ['libkqueue', false], // libkqueue (b): no re-evaluation
  ] as const)('%s mode: EV_ADD on a registered filter re-reports readiness: %s; EV_DELETE then EV_ADD always does', (mode, again) => {
    const k = openKqueue(64, mode);
    const { client, server } = tcpPair();
    k.change([[server, EVFILT_READ, ADD, 0, 1]]);
    sendText(client, 'x');
    expect(k.wait(1000).map((e) => [e.filter, e.udata])).toEqual([[EVFILT_READ, 1]]);
    expect(k.wait(0)).toEqual([]); // EV_CLEAR: reported once
    k.change([[server, EVFILT_READ, ADD, 0, 2]]);
    expect(k.wait(0).map((e) => [e.filter, e.udata])).toEqual(again ? [[EVFILT_READ, 2]] : []);
    expect(
      ok(
        k.change([
          [server, EVFILT_READ, DEL],
          [server, EVFILT_READ, ADD, 0, 3],
        ]),
      ),
    ).toEqual([
      [EV_ERROR, 0],
      [EV_ERROR, 0],
    ]);
    expect(k.wait(0).map((e) => [e.filter, e.udata, e.data])).toEqual([[EVFILT_READ, 3, 1]]);
  });

  it('EV_RECEIPT: one entry per change, errno in data, and the change call consumes no event', () => {
    const k = openKqueue(64, 'bsd');
    const { client, server } = tcpPair();
    k.change([[server, EVFILT_READ, ADD, 0, 5]]);
    sendText(client, 'pending');
    const receipts = k.change([
      [server, EVFILT_WRITE, DEL],
      [1_000_000, EVFILT_READ, ADD],
      [server, EVFILT_WRITE, ADD, 0, 5],
    ]);
    expect(receipts.map((r) => [r.ident, r.filter, r.flags, r.data])).toEqual([
      [server, EVFILT_WRITE, EV_ERROR, ENOENT],
      [1_000_000, EVFILT_READ, EV_ERROR, EBADF],
      [server, EVFILT_WRITE, EV_ERROR, 0],
    ]);
    expect(
      k
        .wait(1000)
        .map((e) => e.filter)
        .sort(),
    ).toEqual([EVFILT_READ, EVFILT_WRITE].sort());
  });

  it('a reset: EV_EOF with the socket error in fflags on both filters', () => {
    const k = openKqueue(64, 'bsd');
    const { client, server } = tcpPair();
    k.change([
      [server, EVFILT_WRITE, ADD],
      [server, EVFILT_READ, ADD],
    ]);
    k.wait(0);
    const linger = Buffer.alloc(8);
    linger.writeInt32LE(1, 0); // l_onoff 1, l_linger 0: close sends RST
    expect(c.setsockopt(client, SOL_SOCKET, SO_LINGER, linger, 8)).toBe(0);
    c.close(opened.splice(opened.indexOf(client), 1)[0]!);
    const events = k.wait(1000);
    expect(events.map((e) => e.filter).sort()).toEqual([EVFILT_READ, EVFILT_WRITE].sort());
    for (const e of events) {
      expect(e.flags & EV_EOF).toBe(EV_EOF);
      expect(e.fflags).not.toBe(0);
    }
  });

  it('NOTE_TRIGGER from another thread ends a wait in progress; a trigger before the wait is kept', async () => {
    const k = openKqueue(64, 'bsd');
    k.change([[0x77616b65, EVFILT_USER, ADD, 0, 9]]);
    const events = new KeventList(64, 2);
    // The wait runs on one of koffi's worker threads, the trigger here.
    const waited = new Promise<number>((resolve, reject) => {
      k.kevent.async(k.kq, null, 0, events.bytes, 2, null, (err: unknown, n: number) => (err ? reject(err) : resolve(n)));
    });
    await new Promise((r) => setTimeout(r, 50));
    const t = performance.now();
    k.trigger(0x77616b65);
    expect(await waited).toBe(1);
    // The wait has no timeout: without the trigger it would never end. The bound only says so.
    expect(performance.now() - t).toBeLessThan(1_000);
    expect([events.ident(0), events.filter(0), events.udata(0)]).toEqual([0x77616b65, EVFILT_USER, 9]);
    expect(k.wait(0)).toEqual([]); // EV_CLEAR
    k.trigger(0x77616b65);
    expect(k.wait(-1).map((e) => e.filter)).toEqual([EVFILT_USER]);
  });

  it('timeouts: zero polls, a timeout is waited out, not cut short', () => {
    const k = openKqueue(64, 'bsd');
    let t = performance.now();
    expect(k.wait(0)).toEqual([]);
    expect(performance.now() - t).toBeLessThan(40); // far below the 50 ms wait below: zero does not block
    t = performance.now();
    expect(k.wait(50)).toEqual([]);
    expect(performance.now() - t).toBeGreaterThanOrEqual(49);
  });

  it('closing a kqueue with libc close leaves no descriptor behind', () => {
    // Each library's one wake-up eventfd exists from its first kqueue on.
    openKqueue(64, 'bsd');
    openKqueue(32, 'bsd');
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 20; i++) {
      const k = openKqueue(i % 2 ? 32 : 64, i % 3 ? 'bsd' : 'libkqueue');
      const { server } = tcpPair();
      k.change([
        [server, EVFILT_READ, ADD],
        [1, EVFILT_USER, ADD],
      ]);
      for (const fd of opened.splice(opened.length - 4)) c.close(fd);
    }
    expect(fds()).toBe(before);
  });
});
