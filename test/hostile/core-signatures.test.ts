// A core module whose imports or exports do not have the types the plugin
// world's canonical ABI gives them (host/generated/world-abi.ts, generated
// from wit/), or that imports what the world lacks. wit-component refuses to
// make such a component, so an attacker wraps the module by hand
// (handWrapped in test/helpers/wat.ts); wasmux refuses it at load, naming the
// function, instead of failing deep in the glue at run time (a mistyped
// import used to end the instance as `crashed` with a BigInt TypeError).
// A neighbour served beside every attempt keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import { cleanUp } from '../helpers/hostile.js';
import { expectRefused, type Refusal } from '../helpers/containment.js';
import { wasmux } from '../helpers/cli.js';
import { handWrapped } from '../helpers/wat.js';

afterEach(cleanUp);

const EXPORTS = `
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64))`;
const RUN = `(func (export "run") (param i32 i32 i32 i32 i32) (result i32) (i32.const 0))`;

const CASES: { name: string; wat: string; code: string; message: RegExp }[] = [
  {
    name: 'an import with an i32 where the ABI has the u64 token (i64)',
    wat: `(module (import "wasmux:plugin/poll@0.1.0" "register" (func (param i32 i32 i32 i32))) ${EXPORTS} ${RUN})`,
    code: 'WASMUX_ERR_BAD_SIGNATURE',
    message:
      /^the plugin's core module imports wasmux:plugin\/poll@0\.1\.0#register as \(i32, i32, i32, i32\) -> \(\); the canonical ABI of the wasmux:plugin world gives it \(i32, i64, i32, i32\) -> \(\)$/,
  },
  {
    name: 'an import with a result the ABI returns through memory',
    wat: `(module (import "wasmux:plugin/tcp@0.1.0" "accept" (func (param i32) (result i32))) ${EXPORTS} ${RUN})`,
    code: 'WASMUX_ERR_BAD_SIGNATURE',
    message: /imports wasmux:plugin\/tcp@0\.1\.0#accept as \(i32\) -> \(i32\); .* gives it \(i32, i32\) -> \(\)$/,
  },
  {
    name: 'a run export with the wrong parameters',
    wat: `(module ${EXPORTS} (func (export "run") (param i64) (result i32) (i32.const 0)))`,
    code: 'WASMUX_ERR_BAD_SIGNATURE',
    message: /^the plugin's core module exports "run" as \(i64\) -> \(i32\); the host calls it as \(i32, i32, i32, i32, i32\) -> \(i32\)$/,
  },
  {
    name: 'a cabi_realloc with the wrong result',
    wat: `(module (memory (export "memory") 1) (func (export "cabi_realloc") (param i32 i32 i32 i32)) ${RUN})`,
    code: 'WASMUX_ERR_BAD_SIGNATURE',
    message: /exports "cabi_realloc" as \(i32, i32, i32, i32\) -> \(\); the host calls it as \(i32, i32, i32, i32\) -> \(i32\)$/,
  },
  {
    name: 'no cabi_realloc',
    wat: `(module (memory (export "memory") 1) ${RUN})`,
    code: 'WASMUX_ERR_MISSING_EXPORT',
    message: /^the plugin's core module does not export the function "cabi_realloc"$/,
  },
  {
    name: 'a function the world does not have',
    wat: `(module (import "wasmux:plugin/tcp@0.1.0" "bind" (func (param i32 i32))) ${EXPORTS} ${RUN})`,
    code: 'WASMUX_ERR_FORBIDDEN_IMPORT',
    message: /imports function wasmux:plugin\/tcp@0\.1\.0#bind, which is not a function of the wasmux:plugin world$/,
  },
  {
    name: 'a memory import (memory shared with something outside the instance)',
    wat: `(module (import "wasmux:plugin/tcp@0.1.0" "memory" (memory 1)) (export "memory" (memory 0)) (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 64)) ${RUN})`,
    code: 'WASMUX_ERR_FORBIDDEN_IMPORT',
    message: /imports memory wasmux:plugin\/tcp@0\.1\.0#memory, which is not a function/,
  },
  {
    name: 'a table import',
    wat: `(module (import "wasmux:plugin/poll@0.1.0" "table" (table 1 funcref)) ${EXPORTS} ${RUN})`,
    code: 'WASMUX_ERR_FORBIDDEN_IMPORT',
    message: /imports table wasmux:plugin\/poll@0\.1\.0#table/,
  },
];

describe("core imports and exports are checked against the world's canonical ABI at load", () => {
  it('refuses each mistyped or unknown import and export with its code, naming it, while a neighbour keeps echoing', async () => {
    // Built first: jco's file system shim closes its descriptors lazily.
    const cases: Refusal[] = [];
    for (const c of CASES) cases.push({ name: c.name, file: await handWrapped('signature', c.wat), code: c.code, message: c.message });
    await expectRefused(cases);
  }, 30_000);

  it('wasmux run exits 2 and prints the refusal with its code; wasmux inspect says it is not runnable', async () => {
    const file = await handWrapped('signature', CASES[0]!.wat);
    const r = await wasmux(['run', file, '--listen', '127.0.0.1:0']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^wasmux: error WASMUX_ERR_BAD_SIGNATURE: the plugin's core module imports wasmux:plugin\/poll@0\.1\.0#register as /m,
    );
    expect(r.stdout).not.toMatch(/listening on/);
    // inspect says the same without running it.
    const i = await wasmux(['inspect', file]);
    expect(i.code).toBe(1);
    expect(i.stdout).toMatch(/^world {4}wasmux:plugin\/plugin@0\.1\.0$/m);
    expect(i.stdout).toMatch(
      /^runnable no: WASMUX_ERR_BAD_SIGNATURE: the plugin's core module imports wasmux:plugin\/poll@0\.1\.0#register as /m,
    );
  });
});
