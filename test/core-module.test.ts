// The core-module reader (host/loader/core-module.ts) at its own layer: it
// must decode every valid WebAssembly 2.0 instruction stream (one wrong
// immediate would misread everything after it), report each feature used,
// and stop at the refused ones, naming where.
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { parse } from '@bytecodealliance/jco';
import { readComponent } from '../host/loader/component.js';
import { readCoreModule } from '../host/loader/core-module.js';
import { ALLOWED_FEATURES } from '../host/loader/validate.js';
import { CORE_EXPORTS } from '../host/generated/world-abi.js';
import { ROOT } from './helpers/cli.js';

/** One function per instruction family of WebAssembly 2.0, with the immediates that are easy to misread. */
const EVERY_2_0_INSTRUCTION = `(module
  (type $pair (func (param i32) (result i32 i32)))
  (memory 1 2)
  (table $t 4 funcref) (table $e 2 externref)
  (global $g (mut i64) (i64.const -9223372036854775808))
  (global $f f64 (f64.const -0.5))
  (global $r funcref (ref.func $control))
  (data $d "abc") (data (i32.const 8) "xyz")
  (elem $el func $control $numeric) (elem (table $t) (i32.const 0) func $control)
  (elem declare func $memory)
  (func $control (param i32) (result i32)
    (block $out (result i32)
      (loop $l (result i32)
        (if (result i32) (local.get 0) (then (i32.const 1)) (else (i32.const 2)))
        (br_table $out $l $out (local.get 0))))
    (block (type $pair) (i32.const 7) (br 0 (i32.const 1) (i32.const 2))) (drop) (drop)
    (call_indirect $t (param i32) (result i32) (i32.const 3) (i32.const 0))
    (select (result i32) (i32.const 1) (i32.const 2) (local.get 0))
    (drop (select (i32.const 1) (i32.const 2) (i32.const 0)))
    (return) unreachable nop)
  (func $numeric (param i32) (result i32) (local i64 f32 f64)
    (local.set 1 (i64.const 0x7fffffffffffffff))
    (local.set 2 (f32.const -1.5)) (local.set 3 (f64.const 1e300))
    (drop (i64.extend8_s (global.get $g))) (drop (i32.extend16_s (i32.const -129)))
    (drop (i32.trunc_sat_f64_s (local.get 3))) (drop (i64.trunc_sat_f32_u (local.get 2)))
    (i32.add (i32.const -2147483648) (i32.popcnt (local.get 0))))
  (func $memory (param i32)
    (i64.store32 offset=65535 align=2 (i32.const 0) (i64.load16_s offset=3 (i32.const 1)))
    (drop (memory.grow (memory.size)))
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3)) (data.drop $d)
    (memory.copy (i32.const 0) (i32.const 4) (i32.const 2)) (memory.fill (i32.const 0) (i32.const 9) (i32.const 1)))
  (func $tables
    (table.set $t (i32.const 1) (table.get $t (i32.const 0)))
    (drop (table.grow $e (ref.null extern) (i32.const 2))) (drop (table.size $e))
    (table.fill $e (i32.const 0) (ref.null extern) (i32.const 1))
    (table.copy $t $t (i32.const 0) (i32.const 1) (i32.const 1))
    (table.init $t $el (i32.const 0) (i32.const 0) (i32.const 1)) (elem.drop $el)
    (drop (ref.is_null (ref.func $memory))))
  (func $simd (result i32)
    (v128.store offset=16 (i32.const 0)
      (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 31 (v128.const i64x2 -1 1) (v128.load32_zero (i32.const 0))))
    (drop (v128.load8_lane 15 (i32.const 0) (i32x4.splat (i32.const 5))))
    (drop (f64x2.convert_low_i32x4_u (v128.load offset=4 (i32.const 0))))
    (i32x4.extract_lane 3 (i32x4.replace_lane 3 (v128.const i32x4 0 0 0 0) (i32.const 9))))
)`;

describe('the core-module reader', () => {
  it('decodes every instruction family of WebAssembly 2.0 and reports exactly its features', async () => {
    const mod = readCoreModule(await parse(EVERY_2_0_INSTRUCTION));
    expect(mod.functions).toBe(5);
    expect(mod.globals).toBe(3);
    expect(mod.tables.map((t) => [t.element, t.min, t.max])).toEqual([
      ['funcref', 4, null],
      ['externref', 2, null],
    ]);
    expect(mod.memories.map((m) => [m.min, m.max])).toEqual([[1, 2]]);
    expect(mod.elementSegments).toBe(3);
    expect(mod.dataSegments).toBe(2);
    expect([...mod.features.keys()].sort()).toEqual([...ALLOWED_FEATURES].sort());
  });

  it("reads every plugin this repository builds, which use only allowed features and the ABI's export types", () => {
    for (const dir of ['dist/plugins', 'dist/test-plugins']) {
      for (const f of readdirSync(`${ROOT}/${dir}`).filter((n) => n.endsWith('.wasm'))) {
        const mod = readCoreModule(readComponent(readFileSync(`${ROOT}/${dir}/${f}`)).mainModule.bytes);
        for (const feature of mod.features.keys()) expect(ALLOWED_FEATURES.has(feature), `${f}: ${feature}`).toBe(true);
        for (const e of mod.exports.filter((x) => x.kind === 'func' && CORE_EXPORTS[x.name]))
          expect(e.signature, `${f} ${e.name}`).toBe(CORE_EXPORTS[e.name]);
        expect(mod.start, f).toBeNull();
      }
    }
  });

  it('stops at a refused feature and says where it is', async () => {
    const cases: [wat: string, feature: string, where: RegExp][] = [
      ['(module (func nop) (func try nop catch_all end))', 'exception-handling', /^try in function 1 at byte offset \d+/],
      ['(module (func (return_call 0)))', 'tail-call', /^return_call in function 0/],
      ['(module (memory 1 1 shared) (func (drop (i32.atomic.load (i32.const 0)))))', 'threads', /^a shared memory 0/],
      ['(module (memory i64 1))', 'memory64', /^a 64-bit memory 0/],
      ['(module (memory 1) (memory 1))', 'multi-memory', /^2 memories/],
      [
        '(module (global i32 (i32.add (i32.const 1) (i32.const 2))))',
        'extended-const',
        /^opcode 0x6a in a constant expression in global 0/,
      ],
    ];
    for (const [wat, feature, where] of cases) {
      const mod = readCoreModule(await parse(wat));
      expect(mod.features.get(feature as never), wat).toMatch(where);
    }
  });
});
