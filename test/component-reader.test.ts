import { describe, it, expect, beforeAll } from 'vitest';
import { createHash } from 'node:crypto';
import { parse, componentEmbed, componentNew, componentWit } from '@bytecodealliance/jco';
import { readComponent, type ComponentInfo } from '../host/loader/component.js';
import { WasmuxError, type WasmuxErrorCode } from '../host/errors.js';

// Shaped like wit-component output: the plugin's module, plus the shim and
// fixup modules that break the cycle between lowering `log` (which needs the
// plugin's memory) and instantiating the plugin (which needs `log`).
function pluginWat(extraImports = '', extraCoreImports = ''): string {
  return `(component
  (type $log-iface (instance
    (type $level (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level-export (eq $level)))
    (type $log-fn (func (param "level" $level-export) (param "message" string)))
    (export "log" (func (type $log-fn)))))
  (import "wasmux:plugin/log@0.1.0" (instance $log-inst (type $log-iface)))
  ${extraImports}
  (core module $main
    (import "wasmux:plugin/log@0.1.0" "log" (func $log (param i32 i32 i32)))
    ${extraCoreImports}
    (memory (export "memory") 1)
    (func (export "run") (result i32) i32.const 2 i32.const 0 i32.const 0 call $log i32.const 0)
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8))
  (core module $shim
    (type $t (func (param i32 i32 i32)))
    (table (export "$imports") 1 1 funcref)
    (func (export "0") (type $t) local.get 0 local.get 1 local.get 2 i32.const 0 call_indirect (type $t)))
  (core module $fixup
    (type $t (func (param i32 i32 i32)))
    (import "actual" "0" (func $f (type $t)))
    (import "shim" "$imports" (table 1 1 funcref))
    (elem (i32.const 0) func $f))
  (core instance $shim-inst (instantiate $shim))
  (alias core export $shim-inst "0" (core func $indirect-log))
  (core instance $log-core (export "log" (func $indirect-log)))
  (core instance $main-inst (instantiate $main (with "wasmux:plugin/log@0.1.0" (instance $log-core))))
  (alias core export $main-inst "memory" (core memory $mem))
  (alias export $log-inst "log" (func $log))
  (core func $lowered-log (canon lower (func $log) (memory $mem) string-encoding=utf8))
  (core instance $actual (export "0" (func $lowered-log)))
  (core instance (instantiate $fixup (with "actual" (instance $actual)) (with "shim" (instance $shim-inst))))
  (type $run-type (func (result u32)))
  (alias core export $main-inst "run" (core func $run-core))
  (func $run (type $run-type) (canon lift (core func $run-core)))
  (export "run" (func $run))
)`;
}

const EVIL_IMPORT = `
  (type $fs-iface (instance
    (type $read (func (param "path" string) (result string)))
    (export "read-file" (func (type $read)))))
  (import "evil:host/fs@1.0.0" (instance $fs (type $fs-iface)))`;

const PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    const byte = n & 0x7f;
    n >>>= 7;
    out.push(n === 0 ? byte : byte | 0x80);
  } while (n !== 0);
  return out;
}

function str(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...leb(bytes.length), ...bytes];
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

function component(...sections: number[][]): Uint8Array {
  return Uint8Array.from([...PREAMBLE, ...sections.flat()]);
}

/** An empty instance type at index 0, so hand-made imports have something to name. */
const INSTANCE_TYPE = section(7, [0x01, 0x42, 0x00]);

function errorOf(fn: () => unknown): WasmuxError {
  try {
    fn();
  } catch (err) {
    if (err instanceof WasmuxError) return err;
    throw new Error(`expected a WasmuxError, got ${String(err)}`);
  }
  throw new Error('expected readComponent to throw');
}

function expectCode(bytes: Uint8Array, code: WasmuxErrorCode): WasmuxError {
  const err = errorOf(() => readComponent(bytes));
  expect(err.code, err.message).toBe(code);
  return err;
}

/** Top-level section boundaries, found independently of the reader under test. */
function sectionBoundaries(bytes: Uint8Array): Set<number> {
  const out = new Set([8]);
  let pos = 8;
  while (pos < bytes.length) {
    pos++;
    let size = 0;
    let shift = 0;
    let byte: number;
    do {
      byte = bytes[pos++];
      size += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    pos += size;
    out.add(pos);
  }
  return out;
}

function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let good: Uint8Array;
let evil: Uint8Array;
let minimalMain: Uint8Array;

beforeAll(async () => {
  minimalMain = await parse('(module (memory (export "memory") 1) (func (export "run")))');
  good = await parse(pluginWat());
  evil = await parse(pluginWat(EVIL_IMPORT, '(import "evil:host/fs@1.0.0" "read-file" (func (param i32 i32 i32)))'));
});

describe('readComponent on a well-formed plugin', () => {
  let info: ComponentInfo;
  beforeAll(() => {
    info = readComponent(good);
  });

  it('is reading a component that wasm-tools itself accepts', async () => {
    expect(await componentWit(good)).toContain('import wasmux:plugin/log@0.1.0;');
  });

  it('lists the top-level imports and exports', () => {
    expect(info.imports).toEqual([{ name: 'wasmux:plugin/log@0.1.0', kind: 'instance' }]);
    expect(info.exports).toEqual([{ name: 'run', kind: 'func' }]);
  });

  it('records size and the SHA-256 of the whole file', () => {
    expect(info.size).toBe(good.length);
    expect(info.sha256).toBe(createHash('sha256').update(good).digest('hex'));
  });

  it('finds every core module and picks the plugin code, not the shim or fixup', () => {
    expect(info.coreModules).toHaveLength(3);
    expect(info.mainModule).toBe(info.coreModules[0]);
    expect(info.mainModule.exports.map((e) => `${e.kind} ${e.name}`)).toEqual(['memory memory', 'func run', 'func cabi_realloc']);
    expect(info.coreModules[1].exports).toContainEqual({ name: '$imports', kind: 'table' });
    expect(info.coreModules[2].imports).toEqual([
      { module: 'actual', name: '0', kind: 'func' },
      { module: 'shim', name: '$imports', kind: 'table' },
    ]);
  });

  it('hands out the main module as a view into the input, which V8 compiles and agrees with', () => {
    const main = info.mainModule;
    expect(main.bytes.buffer).toBe(good.buffer);
    // Input from jco or fs is never backed by a SharedArrayBuffer; the lib typing cannot know that.
    const compiled = new WebAssembly.Module(main.bytes as Uint8Array<ArrayBuffer>);
    const v8Kind = (kind: string) => (kind === 'function' ? 'func' : kind);
    expect(WebAssembly.Module.imports(compiled).map((i) => ({ ...i, kind: v8Kind(i.kind) }))).toEqual(main.imports);
    expect(WebAssembly.Module.exports(compiled).map((e) => ({ ...e, kind: v8Kind(e.kind) }))).toEqual(main.exports);
  });

  it('lists custom section names', async () => {
    const withProducers = await parse(pluginWat().replace(/\)\s*$/, '(@producers (processed-by "wasmux-test" "1.0")))'));
    expect(readComponent(withProducers).customSections).toEqual(['producers', 'component-name']);
    expect(info.customSections).toEqual(['component-name']);
  });
});

describe('readComponent on a plugin with a foreign import', () => {
  it('reports the foreign import by name, next to the allowed one', () => {
    const info = readComponent(evil);
    expect(info.imports).toEqual([
      { name: 'wasmux:plugin/log@0.1.0', kind: 'instance' },
      { name: 'evil:host/fs@1.0.0', kind: 'instance' },
    ]);
    expect(info.mainModule.imports.map((i) => `${i.module}#${i.name}`)).toContain('evil:host/fs@1.0.0#read-file');
  });
});

describe('readComponent on things that are not components', () => {
  it('refuses a core module and says how to make a component', async () => {
    const core = await parse('(module (memory (export "memory") 1) (func (export "run")))');
    expect(() => new WebAssembly.Module(core as Uint8Array<ArrayBuffer>)).not.toThrow();
    const err = expectCode(core, 'WASMUX_ERR_NOT_COMPONENT');
    expect(err.message).toMatch(/core WebAssembly module/);
    expect(err.message).toMatch(/jco new/);
    expect(err.message).toMatch(/npm run build/);
  });

  it('refuses a text file, quoting its start', () => {
    const err = expectCode(new TextEncoder().encode('export function run(): void {}\n'), 'WASMUX_ERR_NOT_WASM');
    expect(err.message).toMatch(/^not a WebAssembly file/);
    expect(err.message).toContain('export function');
  });

  it('refuses an empty file', () => {
    expect(expectCode(new Uint8Array(0), 'WASMUX_ERR_NOT_WASM').message).toMatch(/empty/);
  });

  it('refuses a bare magic number as too short', () => {
    expect(expectCode(Uint8Array.from([0, 0x61, 0x73, 0x6d]), 'WASMUX_ERR_NOT_WASM').message).toMatch(/4 bytes/);
  });

  it('refuses another component format version as unsupported', () => {
    const older = Uint8Array.from([0x00, 0x61, 0x73, 0x6d, 0x0c, 0x00, 0x01, 0x00]);
    expect(expectCode(older, 'WASMUX_ERR_UNSUPPORTED_SHAPE').message).toMatch(/version 12/);
  });
});

describe('readComponent on shapes wasmux cannot run', () => {
  it('refuses nested components', async () => {
    const nested = await parse(pluginWat('(component $inner)'));
    expect(expectCode(nested, 'WASMUX_ERR_UNSUPPORTED_SHAPE').message).toMatch(/nested component/);
  });

  it('refuses a component whose modules do not export memory and run', async () => {
    const noMain = await parse('(component (core module (memory (export "mem") 1) (func (export "run"))))');
    expect(expectCode(noMain, 'WASMUX_ERR_UNSUPPORTED_SHAPE').message).toMatch(/no embedded core module/);
  });

  it('refuses two candidate main modules', async () => {
    const m = '(core module (memory (export "memory") 1) (func (export "run")))';
    const twoMains = await parse(`(component ${m} ${m})`);
    expect(expectCode(twoMains, 'WASMUX_ERR_UNSUPPORTED_SHAPE').message).toMatch(/2 embedded core modules/);
  });
});

describe('import and export name encodings', () => {
  it('reads the legacy 0x01 tag that wasm-tools wrote before 1.217', () => {
    const bytes = component(INSTANCE_TYPE, section(10, [0x01, 0x01, ...str('a:b/c@1.0.0'), 0x05, 0x00]));
    expect(importsOf(bytes)).toEqual([{ name: 'a:b/c@1.0.0', kind: 'instance' }]);
  });

  it('reads the spec form 0x01 name versionsuffix', () => {
    const bytes = component(INSTANCE_TYPE, section(10, [0x01, 0x01, ...str('a:b/c@1'), ...str('.0.0'), 0x05, 0x00]));
    expect(importsOf(bytes)).toEqual([{ name: 'a:b/c@1', versionSuffix: '.0.0', kind: 'instance' }]);
  });

  it('does not mistake a legacy import whose type index looks like a suffix for a suffixed name', () => {
    // Type index 46 is '.', the first byte a version suffix would have.
    const bytes = component(INSTANCE_TYPE, section(10, [0x02, 0x01, ...str('a:b/c@1.0.0'), 0x05, 46, 0x00, ...str('x'), 0x05, 0x00]));
    expect(importsOf(bytes)).toEqual([
      { name: 'a:b/c@1.0.0', kind: 'instance' },
      { name: 'x', kind: 'instance' },
    ]);
  });

  it('reads the 0x02 form with options that current wasm-tools writes', async () => {
    const bytes = await parse(`(component
      (import "wasmux:plugin/log@0.1" (versionsuffix ".0") (instance))
      (import "helper" (implements "evil:host/fs@1.0.0") (instance))
      (import "f" (func))
      (export "wasmux:plugin/run@0.1" (versionsuffix ".0") (func 0)))`);
    expect(importsOf(bytes)).toEqual([
      { name: 'wasmux:plugin/log@0.1', versionSuffix: '.0', kind: 'instance' },
      { name: 'helper', implements: 'evil:host/fs@1.0.0', kind: 'instance' },
      { name: 'f', kind: 'func' },
    ]);
    expect(partsOf(bytes).exports).toEqual([{ name: 'wasmux:plugin/run@0.1', versionSuffix: '.0', kind: 'func' }]);
  });

  it('reads every import kind', async () => {
    const bytes = await parse(`(component
      (import "m" (core module))
      (import "f" (func))
      (import "t" (type (sub resource)))
      (import "c" (component))
      (import "i" (instance))
      (type $u u32)
      (import "u" (type (eq $u))))`);
    expect(importsOf(bytes).map((i) => `${i.kind} ${i.name}`)).toEqual([
      'module m',
      'func f',
      'type t',
      'component c',
      'instance i',
      'type u',
    ]);
  });
});

describe('core module import descriptions', () => {
  it('decodes tables, memories (shared, 64-bit, custom page size), globals and tags', async () => {
    const bytes = await parse(`(component (core module
      (type $ft (func (param i32)))
      (import "env" "f" (func (type $ft)))
      (import "env" "t" (table 1 funcref))
      (import "env" "t64" (table i64 1 10 externref))
      (import "env" "tref" (table 1 (ref null $ft)))
      (import "env" "m" (memory 1))
      (import "env" "mmax" (memory 1 2))
      (import "env" "shared" (memory 1 2 shared))
      (import "env" "m64" (memory i64 1 4294967296))
      (import "env" "m64shared" (memory i64 1 2 shared))
      (import "env" "tiny" (memory 1 (pagesize 1)))
      (import "env" "g" (global i32))
      (import "env" "gmut" (global (mut i64)))
      (import "env" "gref" (global (ref null $ft)))
      (import "env" "gv" (global v128))
      (import "env" "e" (tag (param i32)))
      (memory (export "memory") 1)
      (func (export "run"))))`);
    const { imports } = readComponent(bytes).mainModule;
    expect(imports.map((i) => `${i.kind} ${i.name}`)).toEqual([
      'func f',
      'table t',
      'table t64',
      'table tref',
      'memory m',
      'memory mmax',
      'memory shared',
      'memory m64',
      'memory m64shared',
      'memory tiny',
      'global g',
      'global gmut',
      'global gref',
      'global gv',
      'tag e',
    ]);
  });
});

describe('readComponent on damaged input', () => {
  it('reports a section longer than the file, with its offset', () => {
    const err = expectCode(component([0x0a, 0x10, 0x01]), 'WASMUX_ERR_MALFORMED');
    expect(err.message).toMatch(/import section declares 16 bytes but only 1 remain/);
    expect(err.message).toMatch(/byte offset 8 \(0x8\)/);
  });

  it('reports LEB128 numbers that are too long or too large', () => {
    expect(expectCode(component([0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), 'WASMUX_ERR_MALFORMED').message).toMatch(
      /longer than 5 bytes/,
    );
    expect(expectCode(component([0x0a, 0xff, 0xff, 0xff, 0xff, 0x7f]), 'WASMUX_ERR_MALFORMED').message).toMatch(/does not fit in 32 bits/);
  });

  it('refuses a vector count that cannot fit instead of looping on it', () => {
    const err = expectCode(component(section(10, [0xff, 0xff, 0xff, 0xff, 0x0f])), 'WASMUX_ERR_MALFORMED');
    expect(err.message).toMatch(/4294967295 imports cannot fit/);
  });

  it('refuses names that are not UTF-8', () => {
    const err = expectCode(component(INSTANCE_TYPE, section(10, [0x01, 0x00, 0x02, 0xc3, 0x28, 0x05, 0x00])), 'WASMUX_ERR_MALFORMED');
    expect(err.message).toMatch(/import name is not valid UTF-8/);
  });

  it('refuses unknown section ids and trailing bytes in a section', () => {
    expect(expectCode(component([0x0d, 0x00]), 'WASMUX_ERR_MALFORMED').message).toMatch(/unknown section id 13/);
    const trailing = component(INSTANCE_TYPE, section(10, [0x01, 0x00, ...str('i'), 0x05, 0x00, 0xaa]));
    expect(expectCode(trailing, 'WASMUX_ERR_MALFORMED').message).toMatch(/1 unexpected bytes after the imports/);
  });

  it('gives MALFORMED or NOT_WASM for every truncation that is not at a section boundary', () => {
    const boundaries = sectionBoundaries(good);
    let cutsInsideSections = 0;
    for (let cut = 0; cut < good.length; cut++) {
      const outcome = outcomeOf(good.subarray(0, cut));
      if (boundaries.has(cut)) {
        // A prefix ending between sections is itself a well-formed component.
        expect(['ok', 'WASMUX_ERR_UNSUPPORTED_SHAPE'], `cut at ${cut}`).toContain(outcome);
      } else {
        expect(['WASMUX_ERR_MALFORMED', 'WASMUX_ERR_NOT_WASM'], `cut at ${cut}`).toContain(outcome);
        cutsInsideSections++;
      }
    }
    expect(cutsInsideSections).toBeGreaterThan(good.length * 0.9);
  });

  it('throws only WasmuxError for random bytes after a valid preamble', () => {
    const random = mulberry32(0x5eed);
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from([...PREAMBLE, ...Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256))]);
      expect(['ok', 'WASMUX_ERR_MALFORMED', 'WASMUX_ERR_UNSUPPORTED_SHAPE'], `iteration ${i}`).toContain(outcomeOf(bytes));
    }
  });

  it('throws only WasmuxError for a real component with random bytes corrupted', () => {
    const random = mulberry32(0xc0ffee);
    const outcomes = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const bytes = good.slice();
      for (let flips = 1 + Math.floor(random() * 4); flips > 0; flips--) {
        bytes[8 + Math.floor(random() * (bytes.length - 8))] = Math.floor(random() * 256);
      }
      outcomes.add(outcomeOf(bytes));
    }
    // Mutations must reach past the section headers into the decoders, or this test proves little.
    expect(outcomes).toContain('ok');
    expect(outcomes).toContain('WASMUX_ERR_MALFORMED');
    // (Anything but a WasmuxError would have thrown out of outcomeOf.) The preamble is intact, so the
    // damage is found in the sections: never NOT_WASM or NOT_COMPONENT.
    expect([...outcomes].filter((o) => o !== 'ok' && o !== 'WASMUX_ERR_MALFORMED' && o !== 'WASMUX_ERR_UNSUPPORTED_SHAPE')).toEqual([]);
  });
});

describe('what componentNew records', () => {
  it('keeps no world name in the component (so ComponentInfo has none to offer)', async () => {
    const wit =
      'package demo:tiny@0.1.0;\ninterface log { log: func(msg: string); }\nworld tiny-world { import log; export run: func() -> u32; }';
    const core = await parse(`(module
      (import "demo:tiny/log@0.1.0" "log" (func $log (param i32 i32)))
      (memory (export "memory") 1)
      (func (export "run") (result i32) i32.const 0 i32.const 0 call $log i32.const 7)
      (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))`);
    const embedded = await componentEmbed({ binary: core, witSource: wit, world: 'tiny-world' });
    const latin1 = (b: Uint8Array) => Buffer.from(b).toString('latin1');
    // The world travels into componentNew in a `component-type` custom section of the core module...
    expect(latin1(embedded)).toContain('component-type');
    expect(latin1(embedded)).toContain('tiny-world');
    const made = await componentNew(embedded);
    // ...which componentNew consumes: neither the section nor the name survive.
    expect(latin1(made)).not.toContain('tiny-world');
    const info = readComponent(made);
    expect(info.customSections).toEqual(['component-name', 'producers']);
    expect(info.imports).toEqual([{ name: 'demo:tiny/log@0.1.0', kind: 'instance' }]);
    expect(info.coreModules.map((m) => m === info.mainModule)).toEqual([true, false, false]);
  });
});

function partsOf(bytes: Uint8Array): Pick<ComponentInfo, 'imports' | 'exports'> {
  // These fixtures have no plugin module; readComponent still decodes everything before refusing them.
  const withMain = Uint8Array.from([...bytes, ...section(1, [...minimalMain])]);
  const { imports, exports } = readComponent(withMain);
  return { imports, exports };
}

function importsOf(bytes: Uint8Array) {
  return partsOf(bytes).imports;
}

function outcomeOf(bytes: Uint8Array): string {
  try {
    readComponent(bytes);
    return 'ok';
  } catch (err) {
    if (err instanceof WasmuxError) return err.code;
    throw err;
  }
}
