// The handle table on its own (host/sandbox/handle-table.ts): how a handle's
// 31 bits are split between index and generation for a given table size,
// that no value is ever issued twice in a table's life (a slot is retired
// when its generation would wrap back to the salt), that a stale handle is
// refused after every reuse, that a table whose slots are all retired is
// full, and that the shared `fds` registry the supervisor reads stays exact
// through all of it.
import { describe, it, expect } from 'vitest';
import {
  FIRST_SLOT,
  FREE,
  HandleTable,
  KIND_DRAINED,
  KIND_LISTENER,
  KIND_STREAM,
  NO_FD,
  indexBitsFor,
  newRegistry,
  registryBytes,
} from '../dist/host/sandbox/handle-table.js';

/** A table of `capacity` slots (the reserved ones come on top) and the registry the supervisor would hold. */
function table(capacity: number, salt: number, generationBits?: number) {
  const registry = new SharedArrayBuffer(registryBytes(capacity));
  return { t: new HandleTable(registry, salt, generationBits), supervisorView: new Float64Array(registry) };
}

const slotOf = (t: HandleTable, h: number) => h & ((1 << t.indexBits) - 1);
const genOf = (t: HandleTable, h: number) => h >>> t.indexBits;

/** What the supervisor does when a worker is gone: the descriptors still recorded. */
const recorded = (view: Float64Array) => Array.from(view).filter((fd) => fd >= 0);

describe('the split of a handle into index and generation', () => {
  it('gives the index just the bits the table needs and the generation the rest of bits 0-30', () => {
    // [connections + listeners + connects in flight, index bits]; FIRST_SLOT reserved slots come on top.
    const cases: [number, number][] = [
      [1, 3],
      [4, 3],
      [5, 4],
      [60, 6],
      [61, 7],
      [1024 + 1 + 64, 11],
      [2044, 11],
      [2045, 12],
      [65_536 + 16 + 64, 17],
    ];
    for (const [capacity, bits] of cases) {
      const { t } = table(capacity, 0);
      expect(indexBitsFor(capacity + FIRST_SLOT), `capacity ${capacity}`).toBe(bits);
      expect(t.indexBits, `capacity ${capacity}`).toBe(bits);
      expect(t.generationBits, `capacity ${capacity}`).toBe(31 - bits);
      expect(t.capacity).toBe(capacity);
      // The largest slot's index fits.
      expect(capacity + FIRST_SLOT - 1).toBeLessThan(2 ** bits);
    }
  });

  it('keeps 39 bytes of host memory per connection slot (registry, kinds, generations, registration, readiness, idle clock)', () => {
    const { t } = table(16_384 + 1 + 64, 0);
    expect(t.bytesPerSlot).toBe(39);
    // The bound for the host's part of an idle connection (handle table, readiness cache, fd registry).
    expect(t.bytesPerSlot).toBeLessThanOrEqual(300);
  });

  it("gives the default policy's table (16,384 connections, one listener, 64 in flight) 16 generation bits: about 1.08e9 handles a life", () => {
    const { t } = table(16_384 + 1 + 64, 0);
    expect([t.indexBits, t.generationBits]).toEqual([15, 16]);
    expect(t.lifetimeHandles).toBe(16_449 * 2 ** 16);
    expect(t.lifetimeHandles).toBe(1_078_001_664);
  });

  it('refuses a table too large to leave 11 generation bits, and a generation width it cannot hold', () => {
    expect(() => table(2 ** 20, 0)).toThrow(/handle table too large/);
    expect(() => table(4, 0, 0)).toThrow(/generationBits 0 outside 1\.\.28/);
    expect(() => table(4, 0, 29)).toThrow(/generationBits 29 outside 1\.\.28/);
    expect(table(4, 0, 28).t.generationBits).toBe(28);
  });
});

describe('handles of one slot, issued and closed over and over', () => {
  it('never repeat over the full 2^20 generations of the default table, and the slot retires exactly at the wrap', () => {
    const salt = 0xabcde; // near the top: the generation wraps through 0 on the way back to it
    const { t, supervisorView } = table(1024 + 1 + 64, salt);
    const n = 2 ** t.generationBits;
    const seen = new Set<number>();
    let first = -1;
    let prev = -1;
    for (let i = 0; i < n; i++) {
      const h = t.insert(100 + (i % 1000), KIND_STREAM);
      if (i === 0) first = h;
      // Always the first slot (nothing else is open), the generation one further on from the salt.
      if (slotOf(t, h) !== FIRST_SLOT || genOf(t, h) !== ((salt + i) & (n - 1)) || h <= 0) {
        throw new Error(`cycle ${i}: handle 0x${h.toString(16)}`);
      }
      if (seen.has(h)) throw new Error(`cycle ${i}: 0x${h.toString(16)} issued twice`);
      seen.add(h);
      // The stale values (the last one and the very first) name nothing; the live one its slot.
      if (t.lookup(h) !== FIRST_SLOT || (i > 0 && (t.lookup(prev) !== -1 || t.lookup(first) !== -1))) {
        throw new Error(`cycle ${i}: lookup of live 0x${h.toString(16)} / stale 0x${prev.toString(16)} wrong`);
      }
      // (Plain checks: a million expect() calls would take seconds.)
      if (supervisorView[FIRST_SLOT] !== 100 + (i % 1000)) throw new Error(`cycle ${i}: registry holds ${supervisorView[FIRST_SLOT]}`);
      if (t.remove(FIRST_SLOT) !== 100 + (i % 1000) || t.lookup(h) !== -1 || supervisorView[FIRST_SLOT] !== FREE) {
        throw new Error(`cycle ${i}: remove`);
      }
      prev = h;
    }
    expect(seen.size).toBe(n);
    expect(t.retired).toBe(1);
    // The retired slot is never handed out again: the next socket gets the next slot.
    const next = t.insert(7, KIND_STREAM);
    expect(slotOf(t, next)).toBe(FIRST_SLOT + 1);
    expect(genOf(t, next)).toBe(salt);
    expect(seen.has(next)).toBe(false);
    expect(t.lookup(first)).toBe(-1);
    expect(supervisorView[FIRST_SLOT]).toBe(FREE);
  });

  it('refuses every earlier value after every reuse (a small generation space, checked exhaustively)', () => {
    const { t } = table(1, 3, 6);
    const issued: number[] = [];
    for (let i = 0; i < 64; i++) {
      const h = t.insert(50, KIND_STREAM);
      expect(h, `cycle ${i}`).toBeGreaterThan(0);
      for (const old of issued) expect(t.lookup(old), `cycle ${i}: 0x${old.toString(16)}`).toBe(-1);
      expect(t.lookup(h)).toBe(FIRST_SLOT);
      issued.push(h);
      t.remove(FIRST_SLOT);
    }
    expect(new Set(issued).size).toBe(64);
    // 64 generations issued, the 65th would be the salt again: the only slot is retired, the table full.
    expect(t.retired).toBe(1);
    expect(t.insert(51, KIND_STREAM)).toBe(-1);
    for (const old of issued) expect(t.lookup(old)).toBe(-1);
  });
});

describe('a table whose slots are all retired', () => {
  it('is full for good: insert returns -1 after exactly lifetimeHandles handles, all distinct, none of them live', () => {
    const { t, supervisorView } = table(3, 1, 2);
    expect(t.lifetimeHandles).toBe(12);
    const issued: number[] = [];
    let fd = 200;
    // Keep up to two open at a time, closing the older one, so slots retire at different moments.
    const open: number[] = [];
    let fullWithOneOpen = 0;
    for (;;) {
      const h = t.insert(fd++, open.length % 2 === 0 ? KIND_STREAM : KIND_LISTENER);
      if (h < 0) {
        // Full with a socket still open: closing it frees its slot or retires it.
        if (open.length === 0) break;
        fullWithOneOpen++;
        t.remove(t.lookup(open.shift()!));
        continue;
      }
      issued.push(h);
      open.push(h);
      if (open.length === 2) t.remove(t.lookup(open.shift()!));
    }
    expect(fullWithOneOpen).toBeGreaterThan(0);
    expect(t.insert(999, KIND_STREAM)).toBe(-1);
    expect(issued).toHaveLength(12);
    expect(new Set(issued).size).toBe(12);
    expect(t.retired).toBe(3);
    expect(t.open).toBe(0);
    for (const h of issued) expect(t.lookup(h)).toBe(-1);
    expect([...t.openSlots()]).toEqual([]);
    expect(recorded(supervisorView)).toEqual([]);
    // Every slot issued its 4 generations, 1, 2, 3, 0, in that order.
    for (let s = FIRST_SLOT; s < FIRST_SLOT + 3; s++) {
      expect(issued.filter((h) => slotOf(t, h) === s).map((h) => genOf(t, h))).toEqual([1, 2, 3, 0]);
    }
  });

  it('is told apart from a table full of open sockets, which takes sockets again once one closes', () => {
    const { t } = table(2, 0, 4);
    const a = t.insert(10, KIND_STREAM);
    const b = t.insert(11, KIND_STREAM);
    expect(t.insert(12, KIND_STREAM)).toBe(-1);
    t.remove(t.lookup(a));
    const c = t.insert(12, KIND_STREAM);
    expect(c).toBeGreaterThan(0);
    expect([a, b]).not.toContain(c);
    expect(t.retired).toBe(0);
  });
});

describe('the shared registry', () => {
  it("records exactly the open sockets through inserts, closes and retirements; the backend's own slots are never touched", () => {
    const { t, supervisorView } = table(8, 5, 3);
    // The backend's own (at most three: the last reserved slot is the creating cell, free here).
    [90, 91, 92].forEach((fd, i) => t.recordOwn(i, fd));
    const live = new Map<number, number>(); // handle -> fd
    let rng = 0x2545f491;
    const next = () => ((rng ^= rng << 13), (rng ^= rng >>> 17), (rng ^= rng << 5), rng >>> 0);
    let fd = 300;
    let full = 0;
    for (let step = 0; step < 2000 && t.retired < 8; step++) {
      if (live.size > 0 && (next() % 3 === 0 || live.size === 8)) {
        const handles = [...live.keys()];
        const h = handles[next() % handles.length]!;
        expect(t.remove(t.lookup(h))).toBe(live.get(h));
        live.delete(h);
      } else {
        const h = t.insert(fd, KIND_STREAM);
        if (h < 0) full++;
        else live.set(h, fd++);
      }
      // The supervisor's view: the backend's three, the free creating cell, then one entry per open socket, nothing else.
      expect(Array.from(supervisorView.subarray(0, FIRST_SLOT))).toEqual([90, 91, 92, FREE]);
      expect(recorded(supervisorView.subarray(FIRST_SLOT)).sort()).toEqual([...live.values()].sort());
      expect([...t.openSlots()].map((s) => supervisorView[s]).sort()).toEqual([...live.values()].sort());
      expect(t.open).toBe(live.size);
      for (const [h, f] of live) expect(supervisorView[t.lookup(h)]).toBe(f);
    }
    // 8 slots of 8 generations: 64 handles in all, then nothing more.
    for (const h of [...live.keys()]) t.remove(t.lookup(h));
    expect(t.retired).toBe(8);
    expect(fd - 300).toBe(64);
    expect(full).toBeGreaterThan(0);
    expect(recorded(supervisorView)).toEqual([90, 91, 92]);
  });
});

describe('the salt', () => {
  it("starts every slot's generation, so another instance's handles are refused (here: two salts, every value of one)", () => {
    const { t: a } = table(1024 + 1 + 64, 0x12345);
    const { t: b } = table(1024 + 1 + 64, 0x6789a);
    const fromA: number[] = [];
    for (let i = 0; i < 1089; i++) fromA.push(a.insert(i + 10, KIND_STREAM));
    for (let i = 0; i < 1089; i++) b.insert(i + 5000, KIND_STREAM);
    expect(genOf(a, fromA[0]!)).toBe(0x12345);
    for (const h of fromA) expect(b.lookup(h)).toBe(-1);
    // Only the generation bits of the salt count.
    const { t: wide } = table(1024 + 1 + 64, 0xfff12345);
    expect(genOf(wide, wide.insert(1, KIND_STREAM))).toBe(0x12345);
    // Bit 31 never set, 0 never issued, whatever the salt.
    const { t: top } = table(1024 + 1 + 64, 0xffffffff);
    const h = top.insert(1, KIND_STREAM);
    expect(h).toBeGreaterThan(0);
    expect(h).toBeLessThan(2 ** 31);
  });
});

describe('what lookup refuses', () => {
  it('refuses 0, negative values, reserved slots, indices past the table and free slots, whatever their generation', () => {
    const salt = 9;
    const { t } = table(5, salt, 6); // 9 slots in all: 4 index bits, so indices 9-15 name no slot
    const live = t.insert(40, KIND_STREAM);
    const gen = genOf(t, live);
    const withGen = (slot: number, g = gen) => slot | (g << t.indexBits);
    expect(t.lookup(live)).toBe(FIRST_SLOT);
    expect(t.lookup(0)).toBe(-1);
    for (const h of [-1, -live, live | 0x80000000, 2 ** 31 + live]) expect(t.lookup(h), `0x${(h >>> 0).toString(16)}`).toBe(-1);
    // The reserved slots (the backend's own descriptors, the creating cell) hold descriptors but are never handles.
    t.recordOwn(0, 90);
    t.creatingCell()[0] = 91;
    for (let s = 0; s < FIRST_SLOT; s++) expect(t.lookup(withGen(s)), `reserved slot ${s}`).toBe(-1);
    for (let s = FIRST_SLOT + 5; s < 2 ** t.indexBits; s++) expect(t.lookup(withGen(s)), `index ${s}`).toBe(-1);
    // A slot never issued yet has the salt as its generation: still refused, it holds no socket.
    expect(t.lookup(withGen(FIRST_SLOT + 1, salt))).toBe(-1);
    // The live slot under any other generation.
    for (let g = 0; g < 2 ** t.generationBits; g++) if (g !== gen) expect(t.lookup(withGen(FIRST_SLOT, g))).toBe(-1);
  });
});

describe('a slot reused', () => {
  it('starts clean: insert resets registration, readiness cache, peer-closed and idle-shut, and records the new kind', () => {
    const { t } = table(1, 3);
    const slot = t.lookup(t.insert(10, KIND_LISTENER));
    expect(t.kind[slot]).toBe(KIND_LISTENER);
    // A fresh socket: unregistered, and both directions worth a system call.
    expect([t.registered[slot], t.readReady[slot], t.writeReady[slot], t.peerClosed[slot], t.idleShut[slot]]).toEqual([0, 1, 1, 0, 0]);
    // What the glue sets while the socket lives.
    t.registered[slot] = 1;
    t.interest[slot] = 3;
    t.readReady[slot] = 0;
    t.writeReady[slot] = 0;
    t.peerClosed[slot] = 1;
    t.idleShut[slot] = 1;
    expect(t.remove(slot)).toBe(10);
    expect(t.registered[slot], 'remove clears the registration').toBe(0);
    const again = t.lookup(t.insert(11, KIND_STREAM));
    expect(again).toBe(slot);
    expect(t.kind[again]).toBe(KIND_STREAM);
    expect([t.registered[again], t.readReady[again], t.writeReady[again], t.peerClosed[again], t.idleShut[again]]).toEqual([0, 1, 1, 0, 0]);
  });

  it('hands out the lowest slots first, and a slot just freed before any other', () => {
    const { t } = table(4, 0);
    const hs = [t.insert(1, KIND_STREAM), t.insert(2, KIND_STREAM), t.insert(3, KIND_STREAM)];
    expect(hs.map((h) => slotOf(t, h))).toEqual([FIRST_SLOT, FIRST_SLOT + 1, FIRST_SLOT + 2]);
    t.remove(t.lookup(hs[0]!));
    t.remove(t.lookup(hs[2]!));
    expect(slotOf(t, t.insert(4, KIND_STREAM))).toBe(FIRST_SLOT + 2);
    expect(slotOf(t, t.insert(5, KIND_STREAM))).toBe(FIRST_SLOT);
    expect(slotOf(t, t.insert(6, KIND_STREAM))).toBe(FIRST_SLOT + 3);
  });
});

describe('a slot without a descriptor (a listener the host closed for draining)', () => {
  it('stays live for lookup and openSlots, is not a descriptor for the supervisor, and remove gives NO_FD back', () => {
    const { t, supervisorView } = table(2, 1);
    const h = t.insert(20, KIND_LISTENER);
    const slot = t.lookup(h);
    // What draining does: the socket is closed, the handle stays valid.
    t.fds[slot] = NO_FD;
    t.kind[slot] = KIND_DRAINED;
    expect(t.lookup(h)).toBe(slot);
    expect([...t.openSlots()]).toEqual([slot]);
    expect(t.open).toBe(1);
    expect(recorded(supervisorView)).toEqual([]);
    expect(t.remove(slot)).toBe(NO_FD);
    expect(t.lookup(h)).toBe(-1);
    expect(t.open).toBe(0);
  });
});

describe('the table and its registry at creation', () => {
  it('newRegistry is FREE everywhere (no entry names descriptor 0), and a table over a used registry starts FREE too', () => {
    const registry = newRegistry(6);
    expect(registry.byteLength).toBe(registryBytes(6));
    expect(Array.from(new Float64Array(registry))).toEqual(new Array(6 + FIRST_SLOT).fill(FREE));
    const used = new SharedArrayBuffer(registryBytes(6));
    new Float64Array(used).fill(7);
    const t = new HandleTable(used, 0);
    expect(Array.from(t.fds)).toEqual(new Array(6 + FIRST_SLOT).fill(FREE));
    expect(t.open).toBe(0);
  });

  it('refuses a registry without a slot beyond the reserved ones, and a generation width that is not an integer', () => {
    expect(() => table(0, 0)).toThrow(/handle table without slots/);
    expect(() => table(4, 0, 2.5)).toThrow(/generationBits 2\.5 outside 1\.\.28/);
  });
});
