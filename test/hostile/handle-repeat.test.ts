// A plugin that opens and closes a listener over and over (a raw WAT
// plugin: CYCLES listen/close cycles on its policy address, over real
// sockets), so that every handle lands in the same slot of its table. With
// an 11-bit generation the 2,049th handle was the first one again and the
// first (stale) value worked on the new socket. Now: every value it gets is
// distinct, only the generation changes (by one each time), every earlier
// value is refused once the cycles are done, and the first gets bad-handle
// from local-address and close. The plugin then serves its report (the
// values and the results) on one accepted connection. An echo plugin served
// beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import type net from 'node:net';
import { Neighbour, cleanUp, connect, dump, host } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

/** Twice round the old 11-bit generation, and then some. */
const CYCLES = 4100;
const BAD_HANDLE = 1; // error-code.bad-handle
const FIRST_SLOT = 4; // slots 0-3 hold the backend's own descriptors
/** The report: 4 u32s, then the handle of every cycle. */
const HEADER = 4096;
const HANDLES = HEADER + 16;
const REPORT_BYTES = 16 + 4 * CYCLES;

// Scratch: 1024 listen/accept/send results, 1056 close, 1072 local-address, 2048 wait.
const WAT = `(module
  ${IMPORTS}
  (import "wasmux:plugin/tcp@0.1.0" "local-address" (func $local_address (param i32 i32)))
  ${runtime()}
  (data (i32.const 256) "cycles done")
  ;; 0 for ok, else 1 + the error code (at $at + $codeAt).
  (func $outcome (param $at i32) (param $codeAt i32) (result i32)
    (if (result i32) (i32.load8_u (local.get $at))
      (then (i32.add (i32.const 1) (i32.load8_u (i32.add (local.get $at) (local.get $codeAt)))))
      (else (i32.const 0))))
  (func (export "run") (param $cfg i32) (param $cfgLen i32) (param $list i32) (param $n i32) (param $inst i32) (result i32)
    (local $i i32) (local $h i32) (local $first i32) (local $stale i32) (local $s i32) (local $off i32)
    (loop $cycle
      (call $listen (i32.load8_u (local.get $list))
        (i32.load8_u offset=2 (local.get $list)) (i32.load8_u offset=3 (local.get $list))
        (i32.load8_u offset=4 (local.get $list)) (i32.load8_u offset=5 (local.get $list))
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.load16_u offset=18 (local.get $list)) (i32.const 16) (i32.const 1024))
      (if (i32.load8_u (i32.const 1024)) (then unreachable))
      (local.set $h (i32.load (i32.const 1028)))
      (i32.store (i32.add (i32.const ${HANDLES}) (i32.shl (local.get $i) (i32.const 2))) (local.get $h))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.lt_u (local.get $i) (i32.const ${CYCLES}))
        (then
          (call $close (local.get $h) (i32.const 1056))
          (if (i32.load8_u (i32.const 1056)) (then unreachable))
          ;; Back to wait now and then: the CPU budget is per stretch between waits.
          (if (i32.eqz (i32.and (local.get $i) (i32.const 127)))
            (then (call $wait (i32.const 1) (i32.const 1) (i32.const 0) (i32.const 2048))))
          (br $cycle))))
    ;; Every earlier value must be refused now: count those local-address accepts.
    (local.set $i (i32.const 0))
    (loop $check
      (call $local_address (i32.load (i32.add (i32.const ${HANDLES}) (i32.shl (local.get $i) (i32.const 2)))) (i32.const 1072))
      (if (i32.eqz (i32.load8_u (i32.const 1072))) (then (local.set $stale (i32.add (local.get $stale) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $check (i32.lt_u (local.get $i) (i32.const ${CYCLES - 1}))))
    (local.set $first (i32.load (i32.const ${HANDLES})))
    (i32.store (i32.const ${HEADER}) (i32.const ${CYCLES}))
    (i32.store (i32.const ${HEADER + 4}) (local.get $stale))
    (call $local_address (local.get $first) (i32.const 1072))
    (i32.store (i32.const ${HEADER + 8}) (call $outcome (i32.const 1072) (i32.const 2)))
    (call $close (local.get $first) (i32.const 1056))
    (i32.store (i32.const ${HEADER + 12}) (call $outcome (i32.const 1056) (i32.const 1)))
    (call $log (i32.const 2) (i32.const 256) (i32.const 11))
    ;; Serve the report on the first connection to the last listener.
    (loop $accepting
      (call $wait (i32.const 1) (i32.const 1) (i32.const 20) (i32.const 2048))
      (call $accept (local.get $h) (i32.const 1024))
      (br_if $accepting (i32.load8_u (i32.const 1024))))
    (local.set $s (i32.load (i32.const 1028)))
    (loop $sending
      (call $send (local.get $s) (i32.add (i32.const ${HEADER}) (local.get $off))
        (i32.sub (i32.const ${REPORT_BYTES}) (local.get $off)) (i32.const 1024))
      (if (i32.load8_u (i32.const 1024))
        (then
          (if (i32.load8_u (i32.const 1028)) (then unreachable)) ;; anything but would-block
          (call $wait (i32.const 1) (i32.const 1) (i32.const 20) (i32.const 2048)))
        (else (local.set $off (i32.add (local.get $off) (i32.load (i32.const 1028))))))
      (br_if $sending (i32.lt_u (local.get $off) (i32.const ${REPORT_BYTES}))))
    (call $close (local.get $s) (i32.const 1056))
    (loop $forever (call $wait (i32.const 1) (i32.const 1) (i32.const 1000) (i32.const 2048)) (br $forever))
    (i32.const 0))
)`;

/** Reads `sock` until it ends; returns everything it sent. */
function readAll(sock: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    sock.on('data', (d: Buffer) => parts.push(d));
    sock.once('end', () => resolve(Buffer.concat(parts)));
    sock.once('error', reject);
    sock.resume();
  });
}

describe('a plugin opening and closing a listener thousands of times', () => {
  it(`gets ${CYCLES} distinct handles on one slot, and every stale one is refused; its neighbour keeps echoing`, async () => {
    // Built first: the build's own descriptors come and go before the baseline.
    const plugin = await watPlugin('handle-repeat', WAT);
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const t = performance.now();
    const p = await host(plugin);
    await p.line(/^cycles done$/, 1, 15_000);
    const cycleMs = performance.now() - t;
    const report = await readAll(await connect(p.port));
    expect(report.length, dump(p.logs)).toBe(REPORT_BYTES);
    const [cycles, staleAccepted, firstLocalAddress, firstClose] = [0, 4, 8, 12].map((o) => report.readUInt32LE(o));
    const handles = Array.from({ length: CYCLES }, (_, i) => report.readUInt32LE(16 + 4 * i));

    expect(cycles).toBe(CYCLES);
    // Distinct, every one: the old table issued handles[2048] === handles[0].
    expect(new Set(handles).size).toBe(CYCLES);
    expect(handles[2048]).not.toBe(handles[0]);
    // One slot, the first; only the generation moves, by one each cycle.
    // The lowest bit in which two consecutive handles differ is the generation's lowest.
    const diff = handles[0]! ^ handles[1]!;
    const indexBits = 31 - Math.clz32(diff & -diff);
    const generations = 2 ** (31 - indexBits);
    expect(indexBits).toBe(11); // the hostile helpers' table (maxConnections 1024): 1,093 slots
    for (let i = 0; i < CYCLES; i++) {
      const h = handles[i]!;
      if (h === 0 || h >= 2 ** 31 || (h & ((1 << indexBits) - 1)) !== FIRST_SLOT) throw new Error(`cycle ${i}: 0x${h.toString(16)}`);
      if (i > 0 && h >>> indexBits !== ((handles[i - 1]! >>> indexBits) + 1) % generations) {
        throw new Error(`cycle ${i}: 0x${h.toString(16)} after 0x${handles[i - 1]!.toString(16)}`);
      }
    }
    // Every stale value is refused, the first one explicitly by local-address and close.
    expect(staleAccepted).toBe(0);
    expect(firstLocalAddress).toBe(1 + BAD_HANDLE);
    expect(firstClose).toBe(1 + BAD_HANDLE);
    console.log(
      `handle-repeat: ${CYCLES} listen/close cycles in ${cycleMs.toFixed(0)} ms, ${CYCLES} distinct handles on slot ${FIRST_SLOT} ` +
        `(0x${handles[0]!.toString(16)} .. 0x${handles[CYCLES - 1]!.toString(16)}, ${indexBits} index bits), ` +
        `${CYCLES - 1} stale values refused`,
    );

    expect(p.server.exitReasons()).toEqual([null]);
    expect(p.server.stats()[0]).toMatchObject({ running: true, restarts: 0, ends: {} });
    expect(
      p.logs.filter((l) => l.level === 'warn' || l.level === 'error'),
      dump(p.logs),
    ).toEqual([]);
    await expectContained({ hostile: p, neighbour, base, cause: /^$/, minEnds: 0 });
  }, 30_000);
});
