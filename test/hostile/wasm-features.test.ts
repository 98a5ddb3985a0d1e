// WebAssembly features past 2.0 that the host does not sandbox, and modules
// past the sanity limits, are refused at load with
// WASMUX_ERR_UNSUPPORTED_SHAPE naming the feature and where it was found.
// The case that matters most: exception handling, which Node 20 runs, would
// let a guest catch the host's traps with `catch_all` and run on after an
// out-of-bounds call. Allowed 2.0 features (SIMD here) still load.
import { describe, it, expect, afterEach } from 'vitest';
import { cleanUp, connect, host } from '../helpers/hostile.js';
import { expectRefused, type Refusal } from '../helpers/containment.js';
import { IMPORTS, handWrapped, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

/** A run that calls recv with a return area far outside memory: the host traps it. */
const OOB_CALL = '(call $recv (i32.const 1) (i32.const 16) (i32.const 0x7ffffff0))';

const CASES: { name: string; wat: string; wrap?: boolean; message: RegExp }[] = [
  {
    name: 'legacy exception handling: catch_all around a call the host traps',
    wat: `(module ${IMPORTS} ${runtime()}
      (func (export "run") (param i32 i32 i32 i32 i32) (result i32)
        (block $again (loop $l try ${OOB_CALL} catch_all br $l end))
        (i32.const 0)))`,
    message: /uses exception handling \(try in function \d+ at byte offset \d+ \(0x[0-9a-f]+\)\); wasmux runs WebAssembly 2\.0 modules/,
  },
  {
    name: 'exception handling: a tag and throw',
    wat: `(module ${IMPORTS} ${runtime()} (tag $e)
      (func (export "run") (param i32 i32 i32 i32 i32) (result i32) (throw $e)))`,
    wrap: true,
    message: /uses exception handling \(a tag section at/,
  },
  {
    name: 'threads: a shared memory and atomics',
    wat: `(module (memory (export "memory") 1 1 shared)
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64))
      (func (export "run") (param i32 i32 i32 i32 i32) (result i32) (i32.atomic.load (i32.const 0))))`,
    wrap: true,
    message: /uses threads \(shared memory, atomics\) \(a shared memory 0 at byte offset/,
  },
  {
    name: 'tail calls',
    wat: `(module ${IMPORTS} ${runtime()}
      (func $f (param i32 i32 i32 i32 i32) (result i32) (i32.const 0))
      (func (export "run") (param i32 i32 i32 i32 i32) (result i32)
        (return_call $f (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4))))`,
    message: /uses tail calls \(return_call in function \d+/,
  },
  {
    name: 'more globals than the sanity limit',
    wat: `(module ${IMPORTS} ${runtime()} ${'(global i32 (i32.const 0))'.repeat(100_001)}
      (func (export "run") (param i32 i32 i32 i32 i32) (result i32) (i32.const 0)))`,
    message: /^the plugin's core module has 100002 globals; wasmux runs modules of at most 100000 globals$/,
  },
];

describe('WebAssembly features the host does not sandbox are refused at load', () => {
  it('refuses exception handling, threads, tail calls and oversized modules, naming each, while a neighbour keeps echoing', async () => {
    // Built first: jco's file system shim closes its descriptors lazily.
    const cases: Refusal[] = [];
    for (const c of CASES)
      cases.push({
        name: c.name,
        file: c.wrap ? await handWrapped('feature', c.wat) : await watPlugin('feature', c.wat),
        code: 'WASMUX_ERR_UNSUPPORTED_SHAPE',
        message: c.message,
      });
    await expectRefused(cases);
  }, 60_000);

  it('runs a plugin that uses fixed-width SIMD (WebAssembly 2.0)', async () => {
    const file = await watPlugin(
      'simd',
      `(module ${IMPORTS} ${runtime()}
      (func $sum (result i32) (i32x4.extract_lane 0 (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 41 0 0 0))))
      ${listenThen('(drop (call $sum))')})`,
    );
    const h = await host(file);
    (await connect(h.port)).destroy();
    expect(h.server.exitReasons()).toEqual([null]);
  });
});
