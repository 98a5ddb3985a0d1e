/**
 * What every backend must do (host/backends/backend.ts, wit/poll.wit),
 * checked on the backend itself: one open backend, real loopback sockets,
 * no guest. Each check drives a Rig (./rig.ts: a freshly opened backend);
 * test/backend/*.test.ts run them, one feature per file, on every backend
 * available in vitest's process and, for iocp, under Windows' node.exe in
 * wine (run-checks.ts). Framework-free: a failed check throws (node:assert).
 *
 * "Nothing happens" is checked over QUIET_MS (a short watch can miss a late
 * event but can never fail a correct backend); "something happens" gets
 * SOON_MS, far beyond what a loaded machine needs.
 */
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import type { BackendModule, BackendName } from '../../dist/host/backends/backend.js';
import { SocketAddress } from '../../dist/host/backends/address.js';
import { addressOf } from '../../dist/host/ffi/native-memory.js';
import {
  QUIET_MS,
  R,
  READY_ERROR,
  READY_HANG_UP,
  READY_READABLE,
  READY_READ_CLOSED,
  READY_WRITABLE,
  RW,
  Rig,
  SOON_MS,
  W,
  bits,
  errName,
  show,
  sleep,
  type Ev,
} from './rig.js';

export interface Check {
  title: string;
  run(rig: Rig): Promise<void> | void;
  /**
   * Backends on which this check is known to fail (a deviation from the
   * contract, reported, not yet fixed in host/): why, and the failure it gives.
   */
  deviations?: Partial<Record<BackendName, { why: string; fails: RegExp }>>;
}

// Keys as the host uses them (its handles): bit 31 clear, the keys above are the selectors' own (their wakers').
const K = 0x1234567;
const K2 = 0x7654321;
const K3 = 0x7fffffff;

const keyIs = (key: number) => (e: Ev) => e.key === key;

/** Reads what arrived on `fd` after an event (telling the backend at would-block) and returns it as text. */
function readText(rig: Rig, fd: number): string {
  const { bytes, last } = rig.read(fd);
  assert.equal(errName(last), 'would-block', 'drained to would-block');
  return bytes.toString();
}

function noEventFor(rig: Rig, key: number, what: string, ms = QUIET_MS): void {
  const events = rig.collect(ms);
  assert.deepEqual(events.filter(keyIs(key)), [], `${what}: no event for key ${key}; saw ${show(events)}`);
}

function noEvents(rig: Rig, what: string, ms = QUIET_MS): void {
  const events = rig.collect(ms);
  assert.deepEqual(events, [], `${what}: no event at all`);
}

// ---- sockets ------------------------------------------------------------------------------------

export const sockets = {
  'sockets.addresses': {
    title: 'listen on port 0, accept (would-block when none is pending), and the addresses of both ends agree',
    async run(rig) {
      const l = rig.listen();
      assert.deepEqual([l.addr.v6, Array.from(l.addr.groups.subarray(0, 4))], [false, [127, 0, 0, 1]]);
      const none = new SocketAddress();
      assert.equal(errName(rig.b.accept(l.fd, none)), 'would-block', 'accept with no connection pending');
      const client = rig.connect(l.addr);
      const peer = new SocketAddress();
      const server = await rig.accept(l.fd, peer);
      const clientLocal = new SocketAddress();
      const clientPeer = new SocketAddress();
      const serverLocal = new SocketAddress();
      const serverPeer = new SocketAddress();
      assert.equal(rig.b.localAddress(client, clientLocal), 0);
      assert.equal(rig.b.peerAddress(client, clientPeer), 0);
      assert.equal(rig.b.localAddress(server, serverLocal), 0);
      assert.equal(rig.b.peerAddress(server, serverPeer), 0);
      assert.equal(clientPeer.toString(), l.addr.toString(), 'the client is connected to the listener');
      assert.equal(serverLocal.toString(), l.addr.toString(), "the accepted socket has the listener's address");
      assert.equal(peer.toString(), clientLocal.toString(), "accept filled in the client's address");
      assert.equal(serverPeer.toString(), clientLocal.toString());
      assert.notEqual(clientLocal.port, 0);
    },
  },
  'sockets.absolute-addresses': {
    title: 'recv and send use absolute addresses: bytes go from and to exactly the range given',
    async run(rig) {
      const { client, server } = await rig.pair();
      const src = Buffer.alloc(4096, 0xee);
      const dst = Buffer.alloc(4096, 0xcc);
      Buffer.from('0123456789').copy(src, 1000);
      assert.equal(rig.b.send(client, addressOf(src) + 1000, 10), 10);
      assert.equal(rig.b.register(server, K, R), 0);
      rig.until(keyIs(K), 'readable');
      // A short read leaves the rest; the bytes land at the offset given and nowhere else.
      assert.equal(rig.b.recv(server, addressOf(dst) + 777, 4), 4);
      assert.equal(rig.b.recv(server, addressOf(dst) + 2000, 100), 6);
      assert.equal(dst.toString('latin1', 777, 781), '0123');
      assert.equal(dst.toString('latin1', 2000, 2006), '456789');
      assert.equal(dst[776], 0xcc);
      assert.equal(dst[781], 0xcc);
      assert.equal(dst[1999], 0xcc);
      assert.equal(dst[2006], 0xcc);
      assert.equal(dst.filter((b) => b !== 0xcc).length, 10, 'nothing else written');
      assert.equal(errName(rig.b.recv(server, addressOf(dst), 100)), 'would-block');
    },
  },
  'sockets.shutdown': {
    title: "shutdown(send) ends the peer's stream and fails our later sends with closed; the other direction still works",
    async run(rig) {
      const { client, server } = await rig.pair();
      rig.send(server, 'last words');
      assert.equal(rig.b.shutdown(server, 1), 0);
      assert.equal(errName(rig.b.register(client, K, R)), 'ok');
      const seen: string[] = [];
      let end = -1;
      const deadline = performance.now() + SOON_MS;
      while (end !== 0 && performance.now() < deadline) {
        rig.wait(200);
        const { bytes, last } = rig.read(client);
        seen.push(bytes.toString());
        end = last;
        assert.ok(last === 0 || errName(last) === 'would-block', `recv: ${errName(last)}`);
      }
      assert.equal(seen.join(''), 'last words');
      assert.equal(end, 0, 'end of stream after the data');
      assert.equal(errName(rig.b.send(server, rig.base, 1)), 'closed', 'send after shutdown(send)');
      // Half-closed, not closed: the client can still talk to the server.
      rig.send(client, 'still heard');
      assert.equal(rig.b.register(server, K2, R), 0);
      rig.until(keyIs(K2), 'server readable');
      assert.equal(readText(rig, server), 'still heard');
    },
  },
} satisfies Record<string, Check>;

// ---- edge-triggered readiness ------------------------------------------------------------------------

export const edges = {
  'edge.readable': {
    title: 'one readable event per arrival; none while the data waits unread; after would-block the next arrival is a new event',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      noEvents(rig, 'registered, nothing to read');
      for (let round = 1; round <= 3; round++) {
        rig.send(client, `round ${round}`);
        const e = Rig.one(rig.until(keyIs(K), `round ${round}`), K, `round ${round}`);
        assert.ok(e.ready & READY_READABLE, `readable: ${bits(e.ready)}`);
        noEventFor(rig, K, `round ${round}, not read yet (no new transition)`);
        assert.equal(readText(rig, server), `round ${round}`);
        noEventFor(rig, K, `round ${round}, drained to would-block and nothing new`);
      }
    },
  },
  'edge.writable': {
    title: 'a socket registered writable hears of it once, not on every wait, while it never writes',
    async run(rig) {
      const { server } = await rig.pair();
      assert.equal(rig.b.register(server, K, W), 0);
      const e = Rig.one(rig.until(keyIs(K), 'writable at registration'), K, 'writable');
      assert.ok(e.ready & READY_WRITABLE, bits(e.ready));
      noEventFor(rig, K, 'writable all along, no new transition', QUIET_MS * 2);
    },
  },
  'edge.both-directions': {
    title: 'readable and writable at once come as one event for the key',
    async run(rig) {
      const { client, server } = await rig.pair();
      rig.send(client, 'waiting');
      await sleep(20);
      assert.equal(rig.b.register(server, K, RW), 0);
      const events = rig.until(keyIs(K), 'ready at registration');
      const e = Rig.one(events, K, 'first wait');
      assert.equal(e.ready & (READY_READABLE | READY_WRITABLE), READY_READABLE | READY_WRITABLE, `both in one event: ${bits(e.ready)}`);
    },
  },
  'edge.listener': {
    title: 'a listener is readable once per edge of pending connections; accept drains it to would-block',
    async run(rig) {
      const l = rig.listen();
      assert.equal(rig.b.register(l.fd, K, R), 0);
      noEvents(rig, 'no connection yet');
      rig.connect(l.addr);
      rig.connect(l.addr);
      Rig.one(rig.until(keyIs(K), 'connections pending'), K, 'listener');
      let accepted = 0;
      const deadline = performance.now() + SOON_MS;
      while (accepted < 2 && performance.now() < deadline) {
        const fd = rig.b.accept(l.fd, new SocketAddress());
        if (fd >= 0) {
          rig.b.closeSocket(fd);
          accepted++;
        } else {
          assert.equal(errName(fd), 'would-block');
          await sleep(2);
        }
      }
      assert.equal(accepted, 2);
      assert.equal(errName(rig.b.accept(l.fd, new SocketAddress())), 'would-block');
      rig.b.drained?.(l.fd, R);
      noEventFor(rig, K, 'queue drained');
      rig.connect(l.addr);
      Rig.one(rig.until(keyIs(K), 'a new connection'), K, 'listener again');
    },
  },
  'edge.max-events': {
    title: 'wait returns at most max events; what it leaves is returned by later waits, each key once',
    async run(rig) {
      const keys = [K, K2, K3];
      const pairs = [];
      for (const key of keys) {
        const p = await rig.pair();
        pairs.push(p);
        rig.send(p.client, 'x');
        assert.equal(rig.b.register(p.server, key, R), 0);
      }
      const seen: number[] = [];
      const deadline = performance.now() + SOON_MS;
      for (let i = 0; i < 50 && seen.length < keys.length && performance.now() < deadline; i++) {
        const events = rig.wait(500, 1);
        assert.ok(events.length <= 1, `max 1: ${show(events)}`);
        for (const e of events) {
          assert.ok(!seen.includes(e.key), `key ${e.key} reported twice (${seen})`);
          seen.push(e.key);
        }
      }
      assert.deepEqual([...seen].sort(), [...keys].sort());
      noEvents(rig, 'every key reported');
    },
  },
} satisfies Record<string, Check>;

// ---- re-arming after would-block ------------------------------------------------------------------------

/** Which backends need the consumer's drained() to re-arm a direction (their OS reports levels or one-shots). */
export const NEEDS_DRAINED: Record<BackendName, boolean> = { epoll: false, kqueue: false, poll: true, iocp: true };

export const rearm = {
  'rearm.which': {
    title: 'drained() exists exactly where the OS does not report the next edge itself (poll, iocp; not epoll, kqueue)',
    run(rig) {
      assert.equal(typeof rig.b.drained === 'function', NEEDS_DRAINED[rig.name]);
    },
  },
  'rearm.read': {
    title: 'readable after would-block: re-armed by drained() (and only then) where the backend has it, by itself otherwise',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      rig.send(client, 'one');
      rig.until(keyIs(K), 'first arrival');
      const { bytes, last } = rig.read(server, false);
      assert.equal(bytes.toString(), 'one');
      assert.equal(errName(last), 'would-block');
      rig.send(client, 'two');
      if (rig.b.drained) {
        // Nobody said "drained" yet: the direction stays quiet, whatever arrives.
        noEventFor(rig, K, 'would-block not yet reported to the backend', QUIET_MS * 2);
        rig.b.drained(server, R);
        // What arrived between the would-block and drained() is reported now.
      }
      const e = Rig.one(rig.until(keyIs(K), 'the second arrival'), K, 'second arrival');
      assert.ok(e.ready & READY_READABLE, bits(e.ready));
      assert.equal(readText(rig, server), 'two');
    },
  },
  'rearm.write': {
    title: 'writable after would-block: re-armed by drained() (and only then) where the backend has it, by itself otherwise',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, W), 0);
      rig.until(keyIs(K), 'writable at registration');
      const sent = rig.fill(server, false);
      assert.ok(sent > 0);
      // The peer takes everything: the send buffer empties, a transition to writable.
      await rig.readExactly(client, sent);
      if (rig.b.drained) {
        noEventFor(rig, K, 'would-block not yet reported to the backend', QUIET_MS * 2);
        rig.b.drained(server, W);
      }
      const e = Rig.one(rig.until(keyIs(K), 'writable again'), K, 'writable again');
      assert.ok(e.ready & READY_WRITABLE, bits(e.ready));
    },
  },
  'rearm.reregister': {
    title: 'reregister re-arms: readiness present then is reported again, without draining',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      rig.send(client, 'unread');
      rig.until(keyIs(K), 'first event');
      noEventFor(rig, K, 'not drained');
      assert.equal(rig.b.reregister(server, K, R), 0);
      const e = Rig.one(rig.until(keyIs(K), 'after reregister'), K, 'after reregister');
      assert.ok(e.ready & READY_READABLE, bits(e.ready));
      assert.equal(readText(rig, server), 'unread');
    },
  },
} satisfies Record<string, Check>;

// ---- wake-up from another thread -------------------------------------------------------------------------

// A worker that loads the backend module in its own thread, says so (flag
// 1), sleeps `delayMs`, says it is about to wake (flag 2: whatever ends the
// wait after this may be the wake-up), calls wake(target), and says so (3).
const WAKER = `
const { workerData } = require('node:worker_threads');
const flag = new Int32Array(workerData.flag);
const step = (v) => { Atomics.store(flag, 0, v); Atomics.notify(flag, 0); };
import(workerData.index).then(async ({ loadBackend }) => {
  const m = await loadBackend(workerData.name);
  step(1);
  if (workerData.delayMs > 0) Atomics.wait(flag, 1, 0, workerData.delayMs);
  step(2);
  m.wake(workerData.target);
  step(3);
}).catch((e) => {
  step(-1);
  throw e;
});
`;

interface Waker {
  step(): number;
  /** Resolves when the worker has reached `value` (rejects when it failed, or after `timeoutMs`). */
  reached(value: number, timeoutMs?: number): Promise<void>;
  gone: Promise<void>;
}

function startWaker(rig: Rig, delayMs: number): Waker {
  const flag = new Int32Array(new SharedArrayBuffer(8));
  const index = new URL('../../dist/host/backends/index.js', import.meta.url).href;
  const worker = new Worker(WAKER, {
    eval: true,
    workerData: { flag: flag.buffer, index, name: rig.name, target: rig.b.wakeTarget, delayMs },
  });
  let failure: Error | null = null;
  worker.on('error', (e) => (failure = e));
  const gone = new Promise<void>((r) => worker.once('exit', () => r()));
  return {
    step: () => Atomics.load(flag, 0),
    gone,
    async reached(value, timeoutMs = 30_000) {
      const deadline = performance.now() + timeoutMs;
      while (Atomics.load(flag, 0) < value) {
        if (failure !== null || Atomics.load(flag, 0) < 0) {
          await gone;
          assert.fail(`the waking thread failed: ${(failure as Error | null)?.stack ?? 'no error reported'}`);
        }
        assert.ok(performance.now() < deadline, `the waking thread did not reach step ${value} within ${timeoutMs} ms`);
        await sleep(5);
      }
    },
  };
}

/**
 * A wait with nothing to report blocks until its timeout: true when one of
 * three waits of `ms` lasted at least half of it with no event (a signal may
 * end one early; a wake-up that keeps firing ends all three at once).
 */
function blocks(rig: Rig, ms: number): boolean {
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const events = rig.wait(ms);
    assert.deepEqual(events, [], 'no event');
    if (performance.now() - t >= ms / 2) return true;
  }
  return false;
}

export const wake = {
  'wake.during-wait': {
    title: 'wake() from another thread ends a blocking wait promptly, with 0 events',
    async run(rig) {
      // An idle registered connection: a wait with a socket to watch, none ready.
      const { server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      const delayMs = 300;
      for (let attempt = 1; ; attempt++) {
        const waker = startWaker(rig, delayMs);
        await waker.reached(1);
        // The worker wakes delayMs after saying it is ready. Should this
        // thread have been descheduled that long, try again.
        if (waker.step() !== 1) {
          await waker.gone;
          assert.ok(attempt < 3, 'this thread never got into wait() before the wake-up (3 tries)');
          continue;
        }
        const t = performance.now();
        let waits = 0;
        // A signal can end a wait early (EINTR: 0 events): wait again then.
        while (waker.step() < 2 && waits < 5) {
          assert.deepEqual(rig.wait(20_000), [], 'a wake-up reports no event');
          waits++;
        }
        const ms = performance.now() - t;
        assert.ok(waker.step() >= 2, `the wait returned ${waits} times before the wake-up`);
        // Ended by the wake-up, not by its 20 s timeout (generous: a loaded machine, or wine).
        assert.ok(ms < 10_000, `the wake-up took ${ms.toFixed(0)} ms to end the wait`);
        await waker.reached(3);
        await waker.gone;
        break;
      }
      assert.ok(blocks(rig, QUIET_MS), 'the wake-up is consumed: the next wait blocks until its timeout');
    },
  },
  'wake.before-wait': {
    title: 'a wake-up that lands before the wait is not lost: the next wait returns at once with 0 events, and only that one',
    async run(rig) {
      const waker = startWaker(rig, 0);
      await waker.reached(3);
      await waker.gone;
      const t = performance.now();
      assert.deepEqual(rig.wait(20_000), []);
      assert.ok(performance.now() - t < 10_000, 'the pending wake-up ended the wait');
      assert.ok(blocks(rig, QUIET_MS), 'consumed: the next wait blocks until its timeout');
    },
  },
} satisfies Record<string, Check>;

// ---- stale keys ----------------------------------------------------------------------------------------

export const staleKeys = {
  'stale.reregister': {
    title: 'after reregister with a new key, events come under the new key only',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      assert.equal(rig.b.reregister(server, K2, R), 0);
      rig.send(client, 'x');
      const events = [...rig.until(keyIs(K2), 'under the new key'), ...rig.collect()];
      assert.deepEqual(events.filter(keyIs(K)), [], `nothing under the old key: ${show(events)}`);
    },
  },
  'stale.pending': {
    title: 'readiness pending when the key changes is reported under the new key, never the old one',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      rig.send(client, 'x');
      await sleep(50); // the event is pending in the backend (or the OS) now
      assert.equal(rig.b.reregister(server, K2, R), 0);
      const events = [...rig.until(keyIs(K2), 'under the new key'), ...rig.collect()];
      assert.deepEqual(events.filter(keyIs(K)), [], `nothing under the old key: ${show(events)}`);
    },
  },
  'stale.deregister': {
    title: 'after deregister nothing is reported for the socket, pending readiness included; registering again works',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      rig.send(client, 'pending');
      await sleep(50);
      assert.equal(rig.b.deregister(server), 0);
      noEvents(rig, 'deregistered with readiness pending');
      rig.send(client, ' and more');
      noEvents(rig, 'deregistered, data arriving');
      assert.equal(rig.b.register(server, K3, R), 0);
      const events = [...rig.until(keyIs(K3), 'registered again'), ...rig.collect()];
      assert.deepEqual(
        events.filter((e) => e.key !== K3),
        [],
        show(events),
      );
      assert.equal(readText(rig, server), 'pending and more');
    },
  },
} satisfies Record<string, Check>;

// ---- closing registered sockets ------------------------------------------------------------------------------

export const closing = {
  'close.after-deregister': {
    title: 'deregister then close: nothing is reported for the closed socket, whatever its peer does',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, RW), 0);
      rig.until(keyIs(K), 'writable at registration');
      assert.equal(rig.b.deregister(server), 0);
      rig.closeSocket(server);
      rig.send(client, 'to nobody'); // answered by a reset
      await sleep(20);
      rig.closeSocket(client);
      noEvents(rig, 'closed socket');
    },
  },
  'close.registered': {
    title: 'closeSocket deregisters a registered socket: no event for it, pending readiness included',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, RW), 0);
      rig.send(client, 'pending');
      await sleep(50);
      rig.closeSocket(server);
      noEvents(rig, 'closed while registered');
      rig.closeSocket(client);
      noEvents(rig, 'and its peer closed too');
    },
  },
  'close.reused-number': {
    title:
      "a new socket that gets a closed registered socket's number starts unregistered: register succeeds, only its own key is reported",
    async run(rig) {
      const l = rig.listen();
      const { server } = await rig.pair();
      assert.equal(rig.b.register(server, K, RW), 0);
      rig.until(keyIs(K), 'writable at registration');
      rig.closeSocket(server);
      // The OS hands out the lowest free number (POSIX), so the next sockets
      // get it back unless another thread takes it first: bounded retries.
      let reused = -1;
      for (let i = 0; i < 16 && reused < 0; i++) {
        const fd = rig.connect(l.addr);
        if (fd === server) reused = fd;
      }
      if (reused < 0) {
        // Windows does not promise to reuse handle values: nothing to check then.
        assert.notEqual(process.platform, 'linux', `socket number ${server} not reused in 16 sockets`);
        return;
      }
      assert.equal(errName(rig.b.register(reused, K2, RW)), 'ok', 'the number is not registered any more');
      const events = [...rig.until(keyIs(K2), 'the new socket connected (writable)'), ...rig.collect()];
      assert.deepEqual(
        events.filter((e) => e.key === K),
        [],
        `nothing under the closed socket's key: ${show(events)}`,
      );
    },
  },
} satisfies Record<string, Check>;

// ---- registering twice ------------------------------------------------------------------------------------

export const registration = {
  'register.twice': {
    title: 'registering a registered socket fails with closed and leaves the first registration as it was',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      assert.equal(errName(rig.b.register(server, K2, R)), 'closed');
      assert.equal(errName(rig.b.register(server, K, RW)), 'closed');
      rig.send(client, 'x');
      const events = [...rig.until(keyIs(K), 'under the first key'), ...rig.collect()];
      assert.deepEqual(
        events.map((e) => e.key),
        [K],
        show(events),
      );
      assert.equal(events[0]!.ready & READY_WRITABLE, 0, 'the interest is still readable only');
    },
  },
  'register.not-registered': {
    title: 'reregister and deregister of a socket that is not registered fail with closed (wit/poll.wit)',
    async run(rig) {
      const { server } = await rig.pair();
      assert.equal(errName(rig.b.reregister(server, K, R)), 'closed', 'reregister, never registered');
      assert.equal(errName(rig.b.deregister(server)), 'closed', 'deregister, never registered');
      assert.equal(rig.b.register(server, K, R), 0);
      assert.equal(rig.b.deregister(server), 0);
      assert.equal(errName(rig.b.deregister(server)), 'closed', 'deregister twice');
      assert.equal(errName(rig.b.reregister(server, K, R)), 'closed', 'reregister after deregister');
    },
  },
} satisfies Record<string, Check>;

// ---- the peer goes away --------------------------------------------------------------------------------------

/**
 * Waits until an event for `key` has one of `want` (data-only events in
 * between are drained); returns the readiness seen and the bytes read.
 */
function untilBits(rig: Rig, fd: number, key: number, want: number, what: string): { seen: number; text: string } {
  let seen = 0;
  let text = '';
  const deadline = performance.now() + SOON_MS;
  while ((seen & want) === 0) {
    assert.ok(performance.now() < deadline, `${what}: no ${bits(want)} within ${SOON_MS} ms (saw ${bits(seen)})`);
    for (const e of rig.wait(200)) {
      if (e.key !== key) continue;
      seen |= e.ready;
      if ((e.ready & want) !== 0 || (e.ready & READY_READABLE) === 0) continue;
      const { bytes, last } = rig.read(fd);
      text += bytes.toString();
      assert.equal(errName(last), 'would-block', `${what}: end of stream before an event said ${bits(want)} (saw ${bits(seen)})`);
    }
  }
  return { seen, text };
}

export const peerGone = {
  'peer.shutdown': {
    title: "the peer's shutdown(send) is read-closed (and readable), not hang-up or error, once; recv gives end of stream",
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      rig.send(client, 'bye');
      rig.until(keyIs(K), 'data');
      assert.equal(readText(rig, server), 'bye');
      assert.equal(rig.b.shutdown(client, 1), 0);
      const e = Rig.one(rig.until(keyIs(K), 'the end of the stream'), K, 'shut down');
      assert.equal(e.ready & (READY_READABLE | READY_READ_CLOSED), READY_READABLE | READY_READ_CLOSED, bits(e.ready));
      assert.equal(e.ready & (READY_HANG_UP | READY_ERROR), 0, `half-closed only: ${bits(e.ready)}`);
      assert.equal(rig.read(server).last, 0, 'end of stream');
      noEventFor(rig, K, 'read-closed is reported once');
    },
  },
  'peer.data-then-shutdown': {
    title: "data and the peer's shutdown(send) arriving together: the reads after the event give the data, then end of stream",
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      rig.send(client, 'last words');
      assert.equal(rig.b.shutdown(client, 1), 0);
      await sleep(20);
      // Read-closed may come with the data or after it; either way reading after each event reaches the end.
      let text = '';
      let last = -1;
      let seen = 0;
      const deadline = performance.now() + SOON_MS;
      while (last !== 0) {
        assert.ok(performance.now() < deadline, `no end of stream within ${SOON_MS} ms (read ${JSON.stringify(text)}, saw ${bits(seen)})`);
        for (const e of rig.wait(200)) {
          if (e.key !== K) continue;
          seen |= e.ready;
          const r = rig.read(server);
          text += r.bytes.toString();
          last = r.last;
          assert.ok(last === 0 || errName(last) === 'would-block', `recv: ${errName(last)}`);
        }
      }
      assert.equal(text, 'last words');
      assert.equal(seen & (READY_HANG_UP | READY_ERROR), 0, `half-closed only: ${bits(seen)}`);
    },
  },
  'peer.close': {
    title: "the peer's close is read-closed, not error; recv gives end of stream; sending on draws a reset",
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, RW), 0);
      rig.until(keyIs(K), 'writable at registration');
      rig.closeSocket(client);
      await sleep(20);
      const { seen } = untilBits(rig, server, K, READY_READ_CLOSED, 'peer closed');
      assert.equal(seen & READY_ERROR, 0, bits(seen));
      assert.equal(rig.read(server).last, 0, 'end of stream');
      // The peer is gone: the first byte sent is answered with a reset, after which send fails.
      assert.equal(rig.b.send(server, rig.base, 1), 1, 'the first send after the peer closed is accepted');
      let r = 1;
      const deadline = performance.now() + SOON_MS;
      while (r > 0 && performance.now() < deadline) {
        await sleep(10);
        r = rig.b.send(server, rig.base, 1);
      }
      assert.ok(['reset', 'closed'].includes(errName(r)), `send after the reset: ${errName(r)}`);
    },
  },
  'peer.both-closed': {
    title: 'both directions closed (the peer closed, we shut down sending): read-closed and hang-up',
    async run(rig) {
      const { client, server } = await rig.pair();
      rig.closeSocket(client);
      await sleep(20);
      assert.equal(rig.b.shutdown(server, 1), 0);
      await sleep(50);
      // Registered now: the state present is reported as a new edge.
      assert.equal(rig.b.register(server, K, RW), 0);
      const e = Rig.one(rig.until(keyIs(K), 'hung up'), K, 'hung up');
      assert.equal(
        e.ready & (READY_READ_CLOSED | READY_HANG_UP),
        READY_READ_CLOSED | READY_HANG_UP,
        `hang-up with read-closed: ${bits(e.ready)}`,
      );
      assert.equal(e.ready & READY_ERROR, 0, `a graceful close is no error: ${bits(e.ready)}`);
      assert.equal(rig.read(server).last, 0, 'end of stream');
    },
  },
  'peer.reset': {
    title:
      'a peer that closes with data unread resets: hang-up or error (with readable), reported once; then recv fails or ends, send fails',
    async run(rig) {
      const { client, server } = await rig.pair();
      assert.equal(rig.b.register(server, K, R), 0);
      rig.send(server, 'never read');
      await sleep(20);
      rig.closeSocket(client); // unread data: the close is a reset
      const events = rig.until((e) => e.key === K && (e.ready & (READY_HANG_UP | READY_ERROR)) !== 0, 'the reset');
      const e = events.filter(keyIs(K)).at(-1)!;
      assert.ok(e.ready & READY_READABLE, bits(e.ready));
      noEventFor(rig, K, 'the hang-up is reported once');
      const r = rig.b.recv(server, rig.base, 100);
      if (e.ready & READY_ERROR) {
        // "error: the socket has a pending error; the next recv or send returns it."
        assert.equal(errName(r), 'reset', 'the pending error');
      } else {
        // "hang-up: recv returns what is left, then end of stream, and send fails."
        assert.ok(r === 0 || errName(r) === 'reset', `recv after a hang-up: ${errName(r)}`);
      }
      const s = rig.b.send(server, rig.base, 1);
      assert.ok(s < 0 && errName(s) !== 'would-block', `send after the reset: ${errName(s)}`);
    },
  },
} satisfies Record<string, Check>;

// ---- connecting --------------------------------------------------------------------------------------------

export const connecting = {
  'connect.writable': {
    title: 'a connect completes as writable (no error), and the socket is connected to the listener',
    async run(rig) {
      const l = rig.listen();
      const c = rig.connect(l.addr);
      assert.equal(rig.b.register(c, K, RW), 0);
      const e = Rig.one(rig.until(keyIs(K), 'connected'), K, 'connected');
      assert.ok(e.ready & READY_WRITABLE, bits(e.ready));
      assert.equal(e.ready & (READY_ERROR | READY_HANG_UP), 0, bits(e.ready));
      const peer = new SocketAddress();
      assert.equal(rig.b.peerAddress(c, peer), 0);
      assert.equal(peer.toString(), l.addr.toString());
      const server = await rig.accept(l.fd);
      rig.send(c, 'hello');
      assert.equal(rig.b.register(server, K2, R), 0);
      rig.until(keyIs(K2), 'data over the new connection');
      assert.equal(readText(rig, server), 'hello');
    },
  },
  'connect.refused': {
    title: 'a refused connect is reported with the error bit (and writable); the next recv returns refused',
    async run(rig) {
      // A port nothing listens on any more (loopback: nobody else takes it meanwhile).
      const l = rig.listen();
      const addr = l.addr.clone();
      rig.closeSocket(l.fd);
      const r = rig.b.connect(addr);
      if (r < 0) {
        // Refused at once (allowed: "success means in progress or done"). Linux never does on loopback.
        assert.equal(errName(r), 'refused');
        assert.notEqual(process.platform, 'linux', 'a non-blocking connect on Linux reports refusal later');
        return;
      }
      const c = rig.adopt(r);
      assert.equal(rig.b.register(c, K, RW), 0);
      const events = rig.until((e) => e.key === K && (e.ready & READY_ERROR) !== 0, 'refused');
      const e = events.filter(keyIs(K)).at(-1)!;
      assert.ok(e.ready & READY_WRITABLE, `a failed connect is writable too (the next call says why): ${bits(e.ready)}`);
      // "error: the socket has a pending error; the next recv or send returns it."
      assert.equal(errName(rig.b.recv(c, rig.base, 10)), 'refused', 'the next recv returns the pending error');
    },
  },
} satisfies Record<string, Check>;

export const CHECKS = { ...sockets, ...edges, ...rearm, ...wake, ...staleKeys, ...closing, ...registration, ...peerGone, ...connecting };
export type CheckId = keyof typeof CHECKS;

/** Runs one check on a fresh rig of `module`, disposing of it whatever happens. */
export async function runCheck(id: CheckId, module: BackendModule): Promise<void> {
  const rig = new Rig(module);
  try {
    await (CHECKS[id] as Check).run(rig);
  } finally {
    rig.dispose();
  }
}
