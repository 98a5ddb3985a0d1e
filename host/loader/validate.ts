/**
 * Judges a plugin's core module before anything of it runs: the WebAssembly
 * features it uses, the shape of every import and export against the
 * signatures the canonical ABI gives the plugin world (generated from wit/,
 * host/generated/world-abi.ts), and MODULE_LIMITS. Each refusal names what
 * it refuses, with a stable code.
 */
import { WasmuxError } from '../errors.js';
import { CORE_EXPORTS, CORE_IMPORTS, REQUIRED_EXPORTS } from '../generated/world-abi.js';
import type { CoreModule, Feature } from './core-module.js';

/**
 * Fixed per-module limits: sanity limits far above what any plugin needs
 * and far below what would hurt the host (not policy: no plugin comes near
 * them; the policy's memory and table caps are written into the module,
 * sandbox/module-limits.ts). The
 * largest plugin in this repository (resp) has 212 functions, 44 globals,
 * 21 types, one table of 31 elements, 859 data segments and 99 KiB of code.
 */
export const MODULE_LIMITS = {
  /** Bytes of the core module (its compiled code is several times larger). */
  moduleBytes: 16 * 1024 * 1024,
  /** Functions defined (V8 allows 1,000,000). */
  functions: 100_000,
  /** Globals defined (V8 allows 1,000,000). */
  globals: 100_000,
  /** Function types. */
  types: 100_000,
  /** Tables defined (their elements are capped by the policy's maxTableElements). */
  tables: 100,
  elementSegments: 100_000,
  /** Items of all element segments (each a reference on the worker's heap, like a table element). */
  elementItems: 1_000_000,
  dataSegments: 100_000,
} as const;

/**
 * WebAssembly 2.0: what wasmux runs. Later proposals are refused, because the
 * host does not sandbox them (exception handling would let a guest catch the
 * host's traps with `catch_all` and run on; threads would share memory
 * across the instance's thread boundary) or because they change what the
 * host must bound (GC objects on the worker's heap, tables with 64-bit
 * sizes), or because they make a run depend on the machine (relaxed SIMD).
 */
export const ALLOWED_FEATURES: ReadonlySet<Feature> = new Set<Feature>([
  'sign-extension',
  'nontrapping-float-to-int',
  'multi-value',
  'bulk-memory',
  'reference-types',
  'simd',
]);

const FEATURE_NAMES: Record<Feature, string> = {
  'sign-extension': 'sign-extension operators',
  'nontrapping-float-to-int': 'non-trapping float-to-int conversions',
  'multi-value': 'multiple values',
  'bulk-memory': 'bulk memory operations',
  'reference-types': 'reference types',
  simd: 'fixed-width SIMD',
  'relaxed-simd': 'relaxed SIMD',
  'exception-handling': 'exception handling',
  threads: 'threads (shared memory, atomics)',
  'tail-call': 'tail calls',
  gc: 'garbage-collected types (GC)',
  'function-references': 'typed function references',
  'extended-const': 'extended constant expressions',
  'multi-memory': 'multiple memories',
  memory64: '64-bit memories or tables',
};

function refuse(
  code: 'WASMUX_ERR_UNSUPPORTED_SHAPE' | 'WASMUX_ERR_FORBIDDEN_IMPORT' | 'WASMUX_ERR_MISSING_EXPORT' | 'WASMUX_ERR_BAD_SIGNATURE',
  message: string,
): never {
  throw new WasmuxError(code, message);
}

export function checkFeatures(mod: CoreModule): void {
  for (const [feature, where] of mod.features) {
    if (ALLOWED_FEATURES.has(feature)) continue;
    refuse(
      'WASMUX_ERR_UNSUPPORTED_SHAPE',
      `the plugin's core module uses ${FEATURE_NAMES[feature]} (${where}); wasmux runs WebAssembly 2.0 modules ` +
        `(${[...ALLOWED_FEATURES].map((f) => FEATURE_NAMES[f]).join(', ')}) and refuses later proposals`,
    );
  }
}

export function checkLimits(mod: CoreModule): void {
  const counts: [keyof typeof MODULE_LIMITS, number, string][] = [
    ['moduleBytes', mod.bytes.length, 'bytes'],
    ['functions', mod.functions, 'functions'],
    ['globals', mod.globals, 'globals'],
    ['types', mod.types, 'types'],
    ['tables', mod.tables.length, 'tables'],
    ['elementSegments', mod.elementSegments, 'element segments'],
    ['elementItems', mod.elementItems, 'element segment items'],
    ['dataSegments', mod.dataSegments, 'data segments'],
  ];
  for (const [key, n, what] of counts) {
    const limit = MODULE_LIMITS[key];
    if (n > limit)
      refuse('WASMUX_ERR_UNSUPPORTED_SHAPE', `the plugin's core module has ${n} ${what}; wasmux runs modules of at most ${limit} ${what}`);
  }
}

/** Every import must be a function of the world with its canonical-ABI type; the exports the host calls likewise. */
export function checkAbi(mod: CoreModule): void {
  for (const i of mod.imports) {
    const expected = CORE_IMPORTS[i.module]?.[i.name];
    if (i.kind !== 'func' || expected === undefined) {
      refuse(
        'WASMUX_ERR_FORBIDDEN_IMPORT',
        `the plugin's core module imports ${i.kind === 'func' ? 'function' : i.kind} ${i.module}#${i.name}, ` +
          'which is not a function of the wasmux:plugin world',
      );
    }
    if (i.signature !== expected) {
      refuse(
        'WASMUX_ERR_BAD_SIGNATURE',
        `the plugin's core module imports ${i.module}#${i.name} as ${i.signature}; ` +
          `the canonical ABI of the wasmux:plugin world gives it ${expected}`,
      );
    }
  }
  for (const name of REQUIRED_EXPORTS) {
    if (!mod.exports.some((e) => e.name === name)) {
      refuse(
        'WASMUX_ERR_MISSING_EXPORT',
        `the plugin's core module does not export ${name === 'memory' ? 'its memory as "memory"' : `the function "${name}"`}`,
      );
    }
  }
  for (const e of mod.exports) {
    if (e.name === 'memory') {
      if (e.kind !== 'memory')
        refuse('WASMUX_ERR_BAD_SIGNATURE', `the plugin's core module exports a ${e.kind} as "memory"; it must be its memory`);
      continue;
    }
    const expected = CORE_EXPORTS[e.name];
    if (expected === undefined) continue; // not called by the host
    if (e.kind !== 'func' || e.signature !== expected) {
      refuse(
        'WASMUX_ERR_BAD_SIGNATURE',
        `the plugin's core module exports "${e.name}" as ${e.signature ?? `a ${e.kind}`}; ` + `the host calls it as ${expected}`,
      );
    }
  }
}

/** All of the above, in the order a plugin author fixes them. */
export function checkCoreModule(mod: CoreModule): void {
  checkFeatures(mod);
  checkLimits(mod);
  checkAbi(mod);
}
