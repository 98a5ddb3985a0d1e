// The poll(2) backend's armed bits (host/backends/poll.ts), through its
// behaviour in this process: poll(2) is level-triggered, and the backend
// makes it edge-triggered with one armed bit per socket and direction. A
// reported direction is disarmed; it is armed again by drained() (and only
// then) or by (re)registering. These checks pin what the generic backend
// checks (rearm.test.ts) cannot see: the directions are independent, a
// drained() of an armed direction adds nothing, a drained() of a socket
// that is not registered resurrects nothing, the bits travel with a socket
// when deregistering another moves it in the pollfd array, the scan starts
// after the last socket reported (max-events cannot starve the last ones),
// and the array grows past its first 64 entries.
import { describe, it, expect, beforeAll } from 'vitest';
import { availableBackends, loadBackend } from '../../dist/host/backends/index.js';
import type { BackendModule } from '../../dist/host/backends/backend.js';
import { QUIET_MS, R, RW, READY_READABLE, READY_WRITABLE, Rig, W, bits, errName, sleep, type Ev } from './rig.js';
import { openFds } from '../helpers/server.js';

const here = availableBackends().includes('poll');
const keyIs = (key: number) => (e: Ev) => e.key === key;

describe.skipIf(!here)(
  `the poll backend's armed bits${here ? '' : ` (skipped: the poll backend is not available on ${process.platform})`}`,
  () => {
    let module: BackendModule;
    beforeAll(async () => {
      module = await loadBackend('poll');
    });

    /** A fresh rig for `fn`, disposed of afterwards; the descriptor count must come back. */
    async function withRig(fn: (rig: Rig) => Promise<void> | void): Promise<void> {
      const before = openFds();
      const rig = new Rig(module);
      try {
        await fn(rig);
      } finally {
        rig.dispose();
      }
      expect(openFds()).toBe(before);
    }

    it('arms each direction on its own: drained(writable) re-arms writable only, drained(readable) readable only', () =>
      withRig(async (rig) => {
        const { client, server } = await rig.pair();
        expect(rig.b.register(server, 1, RW)).toBe(0);
        // Writable at once, readable not yet: only writable is reported, so only writable is disarmed.
        expect(rig.until(keyIs(1), 'writable')).toEqual([{ key: 1, ready: READY_WRITABLE }]);
        rig.send(client, 'a');
        expect(rig.until(keyIs(1), 'readable (still armed)')).toEqual([{ key: 1, ready: READY_READABLE }]);
        // Both disarmed now: more data, nothing.
        rig.send(client, 'b');
        expect(rig.collect()).toEqual([]);
        // Writable re-armed: the present state is reported for writable alone, though data waits.
        rig.b.drained!(server, W);
        expect(rig.until(keyIs(1), 'writable again')).toEqual([{ key: 1, ready: READY_WRITABLE }]);
        rig.b.drained!(server, R);
        expect(rig.until(keyIs(1), 'readable again')).toEqual([{ key: 1, ready: READY_READABLE }]);
        expect(rig.read(server).bytes.toString()).toBe('ab');
      }));

    it('reregister arms both directions, whatever was reported before', () =>
      withRig(async (rig) => {
        const { client, server } = await rig.pair();
        rig.send(client, 'x');
        await sleep(20);
        expect(rig.b.register(server, 1, RW)).toBe(0);
        expect(rig.until(keyIs(1), 'both')).toEqual([{ key: 1, ready: READY_READABLE | READY_WRITABLE }]);
        expect(rig.collect()).toEqual([]);
        expect(rig.b.reregister(server, 2, RW)).toBe(0);
        expect(rig.until(keyIs(2), 'both again, under the new key')).toEqual([{ key: 2, ready: READY_READABLE | READY_WRITABLE }]);
        // Reregistering for readable only: writable is not watched even though it is armed.
        expect(rig.b.reregister(server, 3, R)).toBe(0);
        expect(rig.until(keyIs(3), 'readable only')).toEqual([{ key: 3, ready: READY_READABLE }]);
      }));

    it('a drained() of a direction still armed adds nothing: no event until something arrives', () =>
      withRig(async (rig) => {
        const { client, server } = await rig.pair();
        expect(rig.b.register(server, 1, R)).toBe(0);
        for (let i = 0; i < 3; i++) rig.b.drained!(server, R);
        expect(rig.collect()).toEqual([]);
        rig.send(client, 'x');
        expect(rig.until(keyIs(1), 'readable')).toEqual([{ key: 1, ready: READY_READABLE }]);
        expect(rig.collect()).toEqual([]);
      }));

    it('a drained() of a socket that is not registered (never, or no more) does nothing and registers nothing', () =>
      withRig(async (rig) => {
        const { client, server } = await rig.pair();
        rig.send(client, 'x');
        rig.b.drained!(server, RW);
        rig.b.drained!(1_000_000, RW); // beyond every descriptor the backend has seen
        expect(rig.collect()).toEqual([]);
        expect(rig.b.register(server, 1, R)).toBe(0);
        rig.until(keyIs(1), 'readable');
        expect(rig.b.deregister(server)).toBe(0);
        rig.b.drained!(server, R);
        rig.send(client, 'y');
        expect(rig.collect()).toEqual([]);
        // Still unregistered: registering again works (no stale entry says "already registered").
        expect(errName(rig.b.register(server, 2, R))).toBe('ok');
        rig.until(keyIs(2), 'readable under the new registration');
      }));

    it('deregistering a socket moves the last entry into its place with its key, interest and armed bits', () =>
      withRig(async (rig) => {
        const a = await rig.pair();
        const b = await rig.pair();
        const c = await rig.pair();
        expect(rig.b.register(a.server, 1, R)).toBe(0);
        expect(rig.b.register(b.server, 2, R)).toBe(0);
        expect(rig.b.register(c.server, 3, R)).toBe(0); // the last entry
        rig.send(c.client, 'c1');
        expect(rig.until(keyIs(3), 'c readable')).toEqual([{ key: 3, ready: READY_READABLE }]);
        // c is disarmed for reading; removing a (the first) moves c into a's entry.
        expect(rig.b.deregister(a.server)).toBe(0);
        rig.send(c.client, 'c2');
        rig.send(a.client, 'a');
        expect(rig.collect(QUIET_MS * 2)).toEqual([]); // c still disarmed, a gone
        rig.b.drained!(c.server, R);
        expect(rig.until(keyIs(3), 'c re-armed, still under its key')).toEqual([{ key: 3, ready: READY_READABLE }]);
        expect(rig.read(c.server).bytes.toString()).toBe('c1c2');
        rig.send(b.client, 'b');
        expect(rig.until(keyIs(2), 'b untouched')).toEqual([{ key: 2, ready: READY_READABLE }]);
        // And closing one (closeSocket deregisters) moves entries the same way.
        rig.closeSocket(b.server);
        rig.send(c.client, 'c3');
        expect(rig.until(keyIs(3), 'c after b closed')).toEqual([{ key: 3, ready: READY_READABLE }]);
      }));

    it('with max 1, sockets that stay ready are reported in turn: the scan resumes after the last one reported', () =>
      withRig(async (rig) => {
        const keys = [1, 2, 3];
        const servers = new Map<number, number>();
        for (const key of keys) {
          const p = await rig.pair();
          rig.send(p.client, 'x'); // never read: readable for good
          expect(rig.b.register(p.server, key, R)).toBe(0);
          servers.set(key, p.server);
        }
        const order: number[] = [];
        for (let i = 0; i < 9; i++) {
          const events = rig.until(() => true, `wait ${i}`, 5000, 1);
          expect(events).toHaveLength(1);
          order.push(events[0]!.key);
          // Re-armed at once (as a consumer that met would-block would): readable again at the next wait.
          rig.b.drained!(servers.get(events[0]!.key)!, R);
        }
        // Every key three times, none starved by the first entry being ready every time.
        expect(
          keys.map((k) => order.filter((x) => x === k).length),
          `order ${order}`,
        ).toEqual([3, 3, 3]);
      }));

    it('grows past its first 64 entries: 150 sockets, each reported once under its own key', () =>
      withRig(async (rig) => {
        const n = 150;
        for (let key = 1; key <= n; key += 2) {
          const { client, server } = await rig.pair();
          expect(rig.b.register(client, key, W)).toBe(0);
          expect(rig.b.register(server, key + 1, W)).toBe(0);
        }
        const seen = new Map<number, number>();
        const deadline = performance.now() + 10_000;
        while (seen.size < n && performance.now() < deadline) {
          for (const e of rig.wait(500, 64)) {
            expect(e.ready & READY_WRITABLE, bits(e.ready)).toBeTruthy();
            seen.set(e.key, (seen.get(e.key) ?? 0) + 1);
          }
        }
        expect(seen.size).toBe(n);
        expect(
          [...seen].filter(([, count]) => count !== 1),
          'keys reported more than once',
        ).toEqual([]);
        expect(rig.collect()).toEqual([]);
      }));
  },
);
