// Tables are bounded like memory: the policy's maxTableElements is written
// into the module's table limits at start (host/sandbox/module-limits.ts).
// The attack this closes: a module declaring a few funcref/externref tables
// of ten million entries (their elements live on the worker's V8 heap) took
// the host to 613 MiB under --max-memory 16, and with more tables aborted the
// whole process. Now a module that needs more at start is refused with
// WASMUX_ERR_POLICY, and one that grows its tables finds table.grow failing
// at the cap inside the guest.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, host } from '../helpers/hostile.js';
import { baseline, expectContained, expectRefused } from '../helpers/containment.js';
import { wasmux } from '../helpers/cli.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const TEN_MILLION_TABLES = `(module ${IMPORTS} ${runtime()}
  (table 10000000 funcref) (table 10000000 externref) (table 10000000 externref)
  ${listenThen()})`;

const CAP = 1_000_000;

/** Grows both tables as far as they go, logs whether they stopped exactly at CAP, then traps. */
const GROWER = `(module ${IMPORTS} ${runtime()}
  (table $a 1 funcref) (table $b 1 externref)
  (data (i32.const 100) "tables stopped at the cap")
  (data (i32.const 200) "tables grew past the cap!")
  (func $grow
    (loop $big (br_if $big (i32.ne (table.grow $a (ref.null func) (i32.const 65536)) (i32.const -1))))
    (loop $one (br_if $one (i32.ne (table.grow $a (ref.null func) (i32.const 1)) (i32.const -1))))
    (loop $b1 (br_if $b1 (i32.ne (table.grow $b (ref.null extern) (i32.const 1)) (i32.const -1))))
    (if (i32.eq (i32.add (table.size $a) (table.size $b)) (i32.const ${CAP}))
      (then (call $log (i32.const 2) (i32.const 100) (i32.const 25)))
      (else (call $log (i32.const 4) (i32.const 200) (i32.const 25))))
    unreachable)
  ${listenThen('(call $grow)', { loop: false })})`;

describe('tables are capped like memory', () => {
  it('refuses at start a module whose tables need more than maxTableElements, naming the knob, while a neighbour keeps echoing', async () => {
    const file = await watPlugin('tables-10m', TEN_MILLION_TABLES);
    await expectRefused([
      {
        name: 'three tables of 10M entries',
        file,
        code: 'WASMUX_ERR_POLICY',
        message: /^the plugin's tables need 30000000 elements at start; its policy allows 65536 \(maxTableElements\)$/,
      },
    ]);
    const r = await wasmux(['run', file, '--listen', '127.0.0.1:0', '--cpu-budget', '100', '--max-memory', '16']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^wasmux: error WASMUX_ERR_POLICY: the plugin's tables need 30000000 elements at start/m);
  });

  it(`stops table.grow at the cap (${CAP} elements over two tables) inside the guest; the host survives and its neighbour keeps echoing`, async () => {
    const file = await watPlugin('tables-grow', GROWER);
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const h = await host(file, { policy: { maxTableElements: CAP, cpuBudgetMs: 2000 } });
    await h.line(/^trapped: /);
    expect(h.count(/tables grew past the cap/)).toBe(0);
    expect(h.count(/tables stopped at the cap/)).toBeGreaterThanOrEqual(1);
    await expectContained({ hostile: h, neighbour, base, cause: /^trapped: unreachable/ });
  }, 30_000);
});
