/**
 * Hostile plugins written as raw WebAssembly text, built into components the
 * way an attacker would: jco's `parse` (WAT -> core module), then
 * `componentEmbed` with the project's wit/ and `componentNew`, exactly as
 * build/plugins.mjs does for AssemblyScript output. Raw WAT reaches shapes
 * the SDK never emits (huge tables, start functions, exception handling,
 * mistyped imports).
 *
 * `rawComponent` parses a whole component in WAT, for shapes wit-component
 * itself would refuse to wrap (a core import whose type does not match the
 * world): there the attacker writes the component by hand.
 *
 * Files go to .cache/wat-plugins/<name>.wasm, one per distinct source.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parse, componentEmbed, componentNew } from '@bytecodealliance/jco';
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';
import { ROOT } from './cli.js';

const OUT = join(ROOT, '.cache', 'wat-plugins');
const WIT = join(ROOT, 'wit');
// (The package's types describe the browser build; on Node it takes host paths.)
(_setPreopens as unknown as (preopens: Record<string, string>) => void)({ [ROOT]: ROOT });

/**
 * Core imports of the plugin world with their canonical-ABI types (the same
 * as assembly/sdk/bindings.ts). Paste into a `(module ...)`; unused imports
 * are fine.
 */
export const IMPORTS = `
  (import "wasmux:plugin/poll@0.1.0" "register" (func $register (param i32 i64 i32 i32)))
  (import "wasmux:plugin/poll@0.1.0" "reregister" (func $reregister (param i32 i64 i32 i32)))
  (import "wasmux:plugin/poll@0.1.0" "deregister" (func $deregister (param i32 i32)))
  (import "wasmux:plugin/poll@0.1.0" "wait" (func $wait (param i32 i32 i32 i32)))
  (import "wasmux:plugin/tcp@0.1.0" "listen" (func $listen (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasmux:plugin/tcp@0.1.0" "accept" (func $accept (param i32 i32)))
  (import "wasmux:plugin/tcp@0.1.0" "connect" (func $connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasmux:plugin/tcp@0.1.0" "recv" (func $recv (param i32 i32 i32)))
  (import "wasmux:plugin/tcp@0.1.0" "send" (func $send (param i32 i32 i32 i32)))
  (import "wasmux:plugin/tcp@0.1.0" "shutdown" (func $shutdown (param i32 i32 i32)))
  (import "wasmux:plugin/tcp@0.1.0" "close" (func $close (param i32 i32)))
  (import "wasmux:plugin/log@0.1.0" "log" (func $log (param i32 i32 i32)))
  (import "wasmux:plugin/handover@0.1.0" "give" (func $give (param i32 i32 i32 i32)))
  (import "wasmux:plugin/handover@0.1.0" "adopt" (func $adopt (param i32 i32)))
  (import "wasmux:plugin/metrics@0.1.0" "define" (func $mdefine (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasmux:plugin/metrics@0.1.0" "series" (func $mseries (param i32 i32 i32 i32)))
  (import "wasmux:plugin/metrics@0.1.0" "report" (func $mreport (param i32 i32 i32)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "now" (func $now (result i64)))
`;

/**
 * The exports every plugin needs besides `run`: its memory (1 page, growable
 * to `maxPages`) and a bump allocator above 32 KiB for the host's
 * cabi_realloc calls. Data and scratch can use the first 32 KiB.
 */
export function runtime(maxPages = 16): string {
  return `
  (memory (export "memory") 1 ${maxPages})
  (global $bump (mut i32) (i32.const 32768))
  (func (export "cabi_realloc") (param $old i32) (param $oldSize i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (if (i32.eqz (local.get $size)) (then (return (i32.const 0))))
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $align) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $align))))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $size)) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16)) (i32.const 1))) (i32.const 0))
              (then unreachable))))
    (global.set $bump (i32.add (local.get $p) (local.get $size)))
    (local.get $p))
  (func (export "cabi_post_run") (param i32))
`;
}

/**
 * A `run` export that listens on ctx.listen[0] and then blocks in wait
 * forever (answering nothing): a plugin that becomes ready. `before` runs
 * first (WAT instructions), `after` after the listen (in a loop with wait
 * when `loop` is true).
 */
export function listenThen(after = '', { loop = true }: { loop?: boolean } = {}): string {
  // run(cfgPtr, cfgLen, listPtr, listLen, instance): the first socket-address is at listPtr
  // (family u8 @0, v4 octets @2..5, port u16 @18). listen writes result<handle> at 1024.
  return `
  (func (export "run") (param $cfg i32) (param $cfgLen i32) (param $list i32) (param $n i32) (param $inst i32) (result i32)
    (call $listen (i32.load8_u (local.get $list))
      (i32.load8_u offset=2 (local.get $list)) (i32.load8_u offset=3 (local.get $list))
      (i32.load8_u offset=4 (local.get $list)) (i32.load8_u offset=5 (local.get $list))
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.load16_u offset=18 (local.get $list)) (i32.const 128) (i32.const 1024))
    ${loop ? `(loop $forever ${after} (call $wait (i32.const 16) (i32.const 1) (i32.const 50) (i32.const 2048)) (br $forever))` : after}
    (i32.const 0))
`;
}

function write(name: string, bytes: Uint8Array): string {
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, `${name}-${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.wasm`);
  writeFileSync(file, bytes);
  return file;
}

/** Core module text -> the module's bytes (no validation beyond parsing). */
export async function coreBytes(wat: string): Promise<Uint8Array> {
  return parse(wat);
}

/**
 * Core module text -> a plugin component, the way the build makes one.
 * Returns the path of the .wasm file.
 */
export async function watPlugin(name: string, moduleWat: string): Promise<string> {
  const core = await parse(moduleWat);
  const embedded = await componentEmbed({ binary: core, witPath: WIT, world: 'wasmux:plugin/plugin', stringEncoding: 'utf8' });
  return write(name, await componentNew(embedded));
}

/** A whole component written by hand in WAT -> its .wasm file. */
export async function rawComponent(name: string, componentWat: string): Promise<string> {
  return write(name, await parse(componentWat));
}

/**
 * A core module wrapped into a component by hand, without wit-component's
 * checks: the module as given (its imports may have any type), instantiated
 * without arguments, its `run` lifted and exported. What an attacker writes
 * when `componentNew` refuses their module; wasmux must refuse it too.
 */
export async function handWrapped(name: string, moduleWat: string): Promise<string> {
  const interfaces = [...new Set([...moduleWat.matchAll(/\(import "([^"]+)"/g)].map((m) => m[1]!))];
  return rawComponent(
    name,
    `(component
  ${interfaces.map((i) => `(import "${i}" (instance))`).join('\n  ')}
  (core module $main ${moduleWat.replace(/^\s*\(module/, '').replace(/\)\s*$/, '')})
  (core instance $m (instantiate $main))
  (type $rt (func (result u32)))
  (func $run (type $rt) (canon lift (core func $m "run")))
  (export "run" (func $run)))`,
  );
}
