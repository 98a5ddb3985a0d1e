/**
 * A reader for the plugin's core WebAssembly module, deep enough to judge it
 * before it runs: the signature of every import and export, the tables and
 * memories it defines (with where their limits sit, for the caps written
 * into the module), its start function, counts of what it declares, and
 * every WebAssembly feature its code and constant expressions use.
 *
 * It describes; host/loader/validate.ts decides. It decodes every
 * instruction of every function body, because a feature such as exception
 * handling (a `catch_all` that would catch the host's traps) needs no
 * section of its own: only the code shows it. It reads modules the engine
 * has already validated (compilePlugin compiles first), but it is still
 * bounds-checked throughout, and an opcode it does not know ends the read
 * with WASMUX_ERR_UNSUPPORTED_SHAPE: what wasmux cannot describe, it does
 * not run.
 *
 * Format: the WebAssembly 2.0 binary format (core spec §5), plus the
 * encodings of later proposals, recognised only to be named.
 */
import { WasmuxError } from '../errors.js';
import { Reader, at } from './reader.js';

/** A WebAssembly feature a module can use (WebAssembly 2.0's, and the later proposals that can be recognised). */
export type Feature =
  | 'sign-extension'
  | 'nontrapping-float-to-int'
  | 'multi-value'
  | 'bulk-memory'
  | 'reference-types'
  | 'simd'
  | 'relaxed-simd'
  | 'exception-handling'
  | 'threads'
  | 'tail-call'
  | 'gc'
  | 'function-references'
  | 'extended-const'
  | 'multi-memory'
  | 'memory64';

export type CoreKind = 'func' | 'table' | 'memory' | 'global' | 'tag';

export interface ModuleImport {
  module: string;
  name: string;
  kind: CoreKind;
  /** Functions: the signature, "(i32, i64) -> (i32)". */
  signature?: string;
}

export interface ModuleExport {
  name: string;
  kind: CoreKind;
  /** Functions: the signature. */
  signature?: string;
}

/** A table or memory the module defines, with the byte range of its limits. */
export interface Limits {
  /** Bit 0: has a maximum; bit 1: shared; bit 2: 64-bit. */
  flags: number;
  min: number;
  max: number | null;
  /** [start, end) of the limits (flags, min, max) in the module's bytes. */
  range: [number, number];
}

export interface DefinedTable extends Limits {
  /** funcref or externref. */
  element: string;
}

export interface CoreModule {
  bytes: Uint8Array;
  imports: ModuleImport[];
  exports: ModuleExport[];
  /** Number of functions the module defines (not counting imports). */
  functions: number;
  globals: number;
  tables: DefinedTable[];
  memories: Limits[];
  elementSegments: number;
  /** Items of all element segments together. */
  elementItems: number;
  dataSegments: number;
  /** Bytes of data segments, active and passive. */
  dataBytes: number;
  types: number;
  /** Index of the start function, or null. */
  start: number | null;
  /** Each feature used, with where it was first seen. */
  features: Map<Feature, string>;
  /** [start, end) of each section by id (the last one of an id). */
  sections: Map<number, [number, number]>;
}

const SECTION = {
  custom: 0,
  type: 1,
  import: 2,
  function: 3,
  table: 4,
  memory: 5,
  global: 6,
  export: 7,
  start: 8,
  element: 9,
  code: 10,
  data: 11,
  dataCount: 12,
  tag: 13,
} as const;

const VALTYPE_NAMES: Record<number, string> = {
  127: 'i32',
  126: 'i64',
  125: 'f32',
  124: 'f64',
  123: 'v128',
  112: 'funcref',
  111: 'externref',
};
const KINDS: readonly CoreKind[] = ['func', 'table', 'memory', 'global', 'tag'];

function unsupported(message: string): never {
  throw new WasmuxError('WASMUX_ERR_UNSUPPORTED_SHAPE', message);
}

// ---- instructions -------------------------------------------------------------------

/** How an opcode's immediates are encoded. */
enum Imm {
  None,
  Block,
  Label,
  BrTable,
  Call,
  CallIndirect,
  SelectT,
  Index,
  MemArg,
  MemIndex,
  I32,
  I64,
  F32,
  F64,
  RefNull,
  /** Known, refused opcode: decoding stops at the feature. */
  Refused,
}

/** Single-byte opcodes: immediates, and the feature when it is not MVP. Unlisted bytes are unknown. */
const OPCODES = new Map<number, [Imm, Feature?, string?]>();
function ops(from: number, to: number, imm: Imm, feature?: Feature): void {
  for (let op = from; op <= to; op++) OPCODES.set(op, [imm, feature]);
}
ops(0x00, 0x01, Imm.None);
ops(0x02, 0x04, Imm.Block);
OPCODES.set(0x05, [Imm.None]);
OPCODES.set(0x0b, [Imm.None]);
ops(0x0c, 0x0d, Imm.Label);
OPCODES.set(0x0e, [Imm.BrTable]);
OPCODES.set(0x0f, [Imm.None]);
OPCODES.set(0x10, [Imm.Call]);
OPCODES.set(0x11, [Imm.CallIndirect]);
ops(0x1a, 0x1b, Imm.None);
OPCODES.set(0x1c, [Imm.SelectT, 'reference-types']);
ops(0x20, 0x24, Imm.Index);
ops(0x25, 0x26, Imm.Index, 'reference-types'); // table.get, table.set
ops(0x28, 0x3e, Imm.MemArg);
ops(0x3f, 0x40, Imm.MemIndex);
OPCODES.set(0x41, [Imm.I32]);
OPCODES.set(0x42, [Imm.I64]);
OPCODES.set(0x43, [Imm.F32]);
OPCODES.set(0x44, [Imm.F64]);
ops(0x45, 0xbf, Imm.None);
ops(0xc0, 0xc4, Imm.None, 'sign-extension');
OPCODES.set(0xd0, [Imm.RefNull, 'reference-types']);
OPCODES.set(0xd1, [Imm.None, 'reference-types']);
OPCODES.set(0xd2, [Imm.Index, 'reference-types']); // ref.func
for (const [op, name] of [
  [0x06, 'try'],
  [0x07, 'catch'],
  [0x08, 'throw'],
  [0x09, 'rethrow'],
  [0x0a, 'throw_ref'],
  [0x18, 'delegate'],
  [0x19, 'catch_all'],
  [0x1f, 'try_table'],
] as const)
  OPCODES.set(op, [Imm.Refused, 'exception-handling', name]);
for (const [op, name] of [
  [0x12, 'return_call'],
  [0x13, 'return_call_indirect'],
] as const)
  OPCODES.set(op, [Imm.Refused, 'tail-call', name]);
for (const [op, name] of [
  [0x14, 'call_ref'],
  [0x15, 'return_call_ref'],
  [0xd4, 'ref.as_non_null'],
  [0xd5, 'br_on_null'],
  [0xd6, 'br_on_non_null'],
] as const)
  OPCODES.set(op, [Imm.Refused, 'function-references', name]);
OPCODES.set(0xd3, [Imm.Refused, 'gc', 'ref.eq']);
OPCODES.set(0xfb, [Imm.Refused, 'gc', '0xfb prefix']);
OPCODES.set(0xfe, [Imm.Refused, 'threads', 'atomic (0xfe prefix)']);
// 0xfc and 0xfd are prefixes, decoded below.

/** Opcodes allowed in a constant expression in WebAssembly 2.0 (end, the consts, ref.null, ref.func, global.get). */
const CONST_OPCODES = new Set([0x0b, 0x41, 0x42, 0x43, 0x44, 0xd0, 0xd2, 0x23]);

/** Reads instructions up to and including the `end` that closes the expression. */
class ExpressionReader {
  constructor(
    private readonly r: Reader,
    private readonly mod: CoreModule,
    private readonly where: string,
  ) {}

  private use(feature: Feature, what: string, offset: number): void {
    if (!this.mod.features.has(feature)) this.mod.features.set(feature, `${what} in ${this.where} at ${at(offset)}`);
  }

  private refuse(feature: Feature, what: string, offset: number): never {
    this.use(feature, what, offset);
    // Decoding cannot go on past an encoding it does not know; the caller refuses the feature.
    throw new RefusedFeature(feature);
  }

  valtype(what: string): string {
    const start = this.r.pos;
    const t = this.r.u8(what);
    const name = VALTYPE_NAMES[t];
    if (name === undefined) this.refuse('gc', `value type 0x${t.toString(16)}`, start);
    if (t === 0x7b) this.use('simd', 'v128 value', start);
    if (t === 0x70 || t === 0x6f) this.use('reference-types', `${name} value`, start);
    return name;
  }

  private blockType(): void {
    const r = this.r;
    const start = r.pos;
    const b = r.rest()[0];
    if (b === undefined) r.fail('unexpected end of code while reading a block type');
    if (b === 0x40) {
      r.u8('block type');
    } else if (b >= 0x40 && b < 0x80) {
      this.valtype('block type');
    } else {
      // A type index (s33, non-negative): a block with several results or parameters.
      r.skipLeb(5, 'block type index');
      this.use('multi-value', 'block with a type index', start);
    }
  }

  private memarg(): void {
    const start = this.r.pos;
    const align = this.r.u32('memory alignment');
    // Bit 6 of the alignment announces a memory index (multi-memory).
    if (align >= 64) this.refuse('multi-memory', 'memory index in a memarg', start);
    this.r.u32('memory offset');
  }

  private memoryIndex(): void {
    const start = this.r.pos;
    if (this.r.u32('memory index') !== 0) this.refuse('multi-memory', 'a second memory', start);
  }

  /** Reads one expression; `constant` limits it to WebAssembly 2.0's constant instructions. */
  read(constant: boolean): void {
    const r = this.r;
    let depth = 1;
    while (depth > 0) {
      const start = r.pos;
      const op = r.u8('opcode');
      if (constant && !CONST_OPCODES.has(op) && !(op === 0xfd && r.rest()[0] === 12)) {
        this.refuse('extended-const', `opcode 0x${op.toString(16)} in a constant expression`, start);
      }
      if (op === 0xfc) {
        this.misc(start);
        continue;
      }
      if (op === 0xfd) {
        this.simd(start);
        continue;
      }
      const desc = OPCODES.get(op);
      if (desc === undefined)
        unsupported(
          `the plugin's core module uses opcode 0x${op.toString(16)} (in ${this.where} at ${at(start)}), which wasmux does not know`,
        );
      const [imm, feature, name] = desc;
      if (imm === Imm.Refused) this.refuse(feature!, name!, start);
      if (feature) this.use(feature, `opcode 0x${op.toString(16)}`, start);
      switch (imm) {
        case Imm.None:
          if (op === 0x0b) depth--;
          break;
        case Imm.Block:
          this.blockType();
          depth++;
          break;
        case Imm.Label:
        case Imm.Call:
        case Imm.Index:
          r.u32('index');
          break;
        case Imm.BrTable: {
          const n = r.count('br_table labels', 1);
          for (let i = 0; i <= n; i++) r.u32('br_table label');
          break;
        }
        case Imm.CallIndirect: {
          r.u32('type index');
          const tableAt = r.pos;
          if (r.u32('table index') !== 0) this.use('reference-types', 'call_indirect through a second table', tableAt);
          break;
        }
        case Imm.SelectT: {
          const n = r.count('select types', 1);
          if (n !== 1) this.use('multi-value', 'select with several types', start);
          for (let i = 0; i < n; i++) this.valtype('select type');
          break;
        }
        case Imm.MemArg:
          this.memarg();
          break;
        case Imm.MemIndex:
          this.memoryIndex();
          break;
        case Imm.I32:
          r.skipLeb(5, 'i32 constant');
          break;
        case Imm.I64:
          r.skipLeb(10, 'i64 constant');
          break;
        case Imm.F32:
          r.bytes(4, 'f32 constant');
          break;
        case Imm.F64:
          r.bytes(8, 'f64 constant');
          break;
        case Imm.RefNull: {
          const t = r.u8('heap type');
          if (t !== 0x70 && t !== 0x6f) this.refuse('gc', `ref.null of heap type 0x${t.toString(16)}`, start);
          break;
        }
      }
    }
  }

  // 0xfc: saturating truncation (0-7), bulk memory and table instructions (8-17).
  private misc(start: number): void {
    const r = this.r;
    const sub = r.u32('0xfc opcode');
    if (sub <= 7) {
      this.use('nontrapping-float-to-int', `0xfc ${sub}`, start);
      return;
    }
    if (sub > 17)
      unsupported(`the plugin's core module uses opcode 0xfc ${sub} (in ${this.where} at ${at(start)}), which wasmux does not know`);
    // table.grow, table.size and table.fill came with reference types; the rest with bulk memory.
    this.use(sub >= 15 ? 'reference-types' : 'bulk-memory', `0xfc ${sub}`, start);
    switch (sub) {
      case 8: // memory.init data, mem
        r.u32('data index');
        this.memoryIndex();
        break;
      case 9: // data.drop
      case 13: // elem.drop
      case 15: // table.grow
      case 16: // table.size
      case 17: // table.fill
        r.u32('index');
        break;
      case 10: // memory.copy dst, src
        this.memoryIndex();
        this.memoryIndex();
        break;
      case 11: // memory.fill
        this.memoryIndex();
        break;
      case 12: // table.init elem, table
      case 14: // table.copy dst, src
        r.u32('index');
        r.u32('table index');
        break;
    }
  }

  // 0xfd: fixed-width SIMD (0-255); relaxed SIMD starts at 256.
  private simd(start: number): void {
    const r = this.r;
    const sub = r.u32('0xfd opcode');
    if (sub > 255) this.refuse('relaxed-simd', `0xfd ${sub}`, start);
    this.use('simd', `0xfd ${sub}`, start);
    if (sub <= 11 || sub === 92 || sub === 93) {
      this.memarg(); // loads, stores, load_zero
    } else if (sub === 12 || sub === 13) {
      r.bytes(16, 'v128 constant or shuffle lanes');
    } else if (sub >= 21 && sub <= 34) {
      r.u8('lane index');
    } else if (sub >= 84 && sub <= 91) {
      this.memarg(); // load_lane, store_lane
      r.u8('lane index');
    }
  }
}

/** Thrown by the expression reader when decoding reaches a refused feature (recorded in `features`). */
class RefusedFeature extends Error {
  constructor(readonly feature: Feature) {
    super(feature);
  }
}

// ---- sections -------------------------------------------------------------------------

function readLimits(r: Reader, what: string): Limits {
  const start = r.pos;
  const flags = r.u8(`${what} limits`);
  // 64-bit limits (memory64) are recorded as a feature by the caller; their values do not matter then.
  const number = (which: string): number => {
    if ((flags & 0x04) === 0) return r.u32(`${what} ${which}`);
    r.skipLeb(10, `${what} ${which}`);
    return Number.POSITIVE_INFINITY;
  };
  const min = number('minimum');
  const max = flags & 0x01 ? number('maximum') : null;
  return { flags, min, max, range: [start, r.pos] };
}

function funcType(r: Reader, ex: ExpressionReader): string {
  const params = [];
  const n = r.count('parameters', 1);
  for (let i = 0; i < n; i++) params.push(ex.valtype('parameter type'));
  const results = [];
  const m = r.count('results', 1);
  for (let i = 0; i < m; i++) results.push(ex.valtype('result type'));
  return `(${params.join(', ')}) -> (${results.join(', ')})`;
}

/**
 * Reads a core module. Throws WasmuxError: WASMUX_ERR_MALFORMED for bytes
 * that are not a module, WASMUX_ERR_UNSUPPORTED_SHAPE for an encoding it
 * does not know. A refused feature (exception handling, threads, ...) stops
 * the read early with the feature recorded; validate.ts names it.
 */
export function readCoreModule(bytes: Uint8Array): CoreModule {
  const mod: CoreModule = {
    bytes,
    imports: [],
    exports: [],
    functions: 0,
    globals: 0,
    tables: [],
    memories: [],
    elementSegments: 0,
    elementItems: 0,
    dataSegments: 0,
    dataBytes: 0,
    types: 0,
    start: null,
    features: new Map(),
    sections: new Map(),
  };
  try {
    readSections(bytes, mod);
  } catch (e) {
    if (!(e instanceof RefusedFeature)) throw e;
  }
  return mod;
}

function readSections(bytes: Uint8Array, mod: CoreModule): void {
  const r = new Reader(bytes, 0, bytes.length, 'core module');
  const header = r.bytes(8, 'core module header');
  if (header[0] !== 0 || header[1] !== 0x61 || header[2] !== 0x73 || header[3] !== 0x6d || header[4] !== 1) {
    r.fail('not a core WebAssembly module (version 1)', 0);
  }
  const types: string[] = [];
  const funcSigs: (string | undefined)[] = []; // function index space
  const kindCounts = [0, 0, 0, 0, 0];
  const exportIndices: number[] = [];

  while (!r.atEnd()) {
    const sectionStart = r.pos;
    const id = r.u8('section id');
    const size = r.u32('section size');
    const body = r.sub(size, `section ${id}`);
    mod.sections.set(id, [sectionStart, body.end]);
    const where = (what: string) => new ExpressionReader(body, mod, what);
    switch (id) {
      case SECTION.custom:
        break;
      case SECTION.type: {
        const n = body.count('types', 1);
        mod.types = n;
        for (let i = 0; i < n; i++) {
          const formAt = body.pos;
          const form = body.u8('type form');
          if (form !== 0x60) {
            mod.features.set('gc', `type form 0x${form.toString(16)} (type ${i}) at ${at(formAt)}`);
            throw new RefusedFeature('gc');
          }
          const sig = funcType(body, where(`type ${i}`));
          if (/->\s*\([^)]*,/.test(sig)) mod.features.set('multi-value', `type ${i} ${sig}`);
          types.push(sig);
        }
        break;
      }
      case SECTION.import: {
        const n = body.count('imports', 4);
        for (let i = 0; i < n; i++) {
          const module = body.name('import module name');
          const name = body.name('import name');
          const kindAt = body.pos;
          const kind = KINDS[body.u8('import kind')];
          if (kind === undefined) body.fail('invalid import kind', kindAt);
          const imp: ModuleImport = { module, name, kind };
          kindCounts[KINDS.indexOf(kind)]++;
          if (kind === 'func') {
            imp.signature = types[body.u32('type index')] ?? '(unknown type)';
            funcSigs.push(imp.signature);
          } else if (kind === 'table' || kind === 'memory') {
            if (kind === 'table') where('a table import').valtype('table element type');
            if (readLimits(body, kind).flags & 0x04) mod.features.set('memory64', `a 64-bit ${kind} import ${module}#${name}`);
          } else if (kind === 'global') {
            where('a global import').valtype('global type');
            body.u8('global mutability');
          } else {
            mod.features.set('exception-handling', `tag import ${module}#${name}`);
            throw new RefusedFeature('exception-handling');
          }
          mod.imports.push(imp);
        }
        break;
      }
      case SECTION.function: {
        const n = body.count('functions', 1);
        mod.functions = n;
        for (let i = 0; i < n; i++) funcSigs.push(types[body.u32('type index')]);
        break;
      }
      case SECTION.table: {
        const n = body.count('tables', 3);
        for (let i = 0; i < n; i++) {
          const formAt = body.pos;
          if (body.rest()[0] === 0x40) {
            mod.features.set('function-references', `table ${i} with an initializer at ${at(formAt)}`);
            throw new RefusedFeature('function-references');
          }
          const element = where(`table ${i}`).valtype('table element type');
          const limits = readLimits(body, 'table');
          if (limits.flags & 0x04) mod.features.set('memory64', `a 64-bit table ${i} at ${at(limits.range[0])}`);
          if (limits.flags & 0x02) mod.features.set('threads', `a shared table ${i} at ${at(limits.range[0])}`);
          mod.tables.push({ element, min: limits.min, max: limits.max, range: limits.range, flags: limits.flags });
        }
        if (kindCounts[1]! + n > 1) mod.features.set('reference-types', `${kindCounts[1]! + n} tables`);
        break;
      }
      case SECTION.memory: {
        const n = body.count('memories', 2);
        for (let i = 0; i < n; i++) {
          const limits = readLimits(body, 'memory');
          if (limits.flags & 0x04) mod.features.set('memory64', `a 64-bit memory ${i} at ${at(limits.range[0])}`);
          if (limits.flags & 0x02) mod.features.set('threads', `a shared memory ${i} at ${at(limits.range[0])}`);
          mod.memories.push(limits);
        }
        if (kindCounts[2]! + n > 1) mod.features.set('multi-memory', `${kindCounts[2]! + n} memories`);
        break;
      }
      case SECTION.global: {
        const n = body.count('globals', 3);
        mod.globals = n;
        for (let i = 0; i < n; i++) {
          const ex = where(`global ${i}`);
          ex.valtype('global type');
          body.u8('global mutability');
          ex.read(true);
        }
        break;
      }
      case SECTION.export: {
        const n = body.count('exports', 3);
        for (let i = 0; i < n; i++) {
          const name = body.name('export name');
          const kindAt = body.pos;
          const kind = KINDS[body.u8('export kind')];
          if (kind === undefined) body.fail('invalid export kind', kindAt);
          const index = body.u32('export index');
          mod.exports.push({ name, kind });
          exportIndices.push(index);
        }
        break;
      }
      case SECTION.start:
        mod.start = body.u32('start function index');
        break;
      case SECTION.element: {
        const n = body.count('element segments', 2);
        mod.elementSegments = n;
        for (let i = 0; i < n; i++) readElement(body, where(`element segment ${i}`), mod, i);
        break;
      }
      case SECTION.dataCount:
        body.u32('data count');
        mod.features.set('bulk-memory', 'data count section');
        break;
      case SECTION.code: {
        const n = body.count('function bodies', 2);
        for (let i = 0; i < n; i++) {
          const size = body.u32('function body size');
          const fn = body.sub(size, 'function body');
          const index = kindCounts[0]! + i;
          const ex = new ExpressionReader(fn, mod, `function ${index}`);
          const groups = fn.count('local groups', 2);
          for (let g = 0; g < groups; g++) {
            fn.u32('local count');
            ex.valtype('local type');
          }
          ex.read(false);
          fn.expectEnd(`function ${index}`);
        }
        break;
      }
      case SECTION.data: {
        const n = body.count('data segments', 2);
        mod.dataSegments = n;
        for (let i = 0; i < n; i++) {
          const flagsAt = body.pos;
          const flags = body.u32('data segment flags');
          if (flags === 1) mod.features.set('bulk-memory', `passive data segment ${i} at ${at(flagsAt)}`);
          if (flags === 2 && body.u32('memory index') !== 0) {
            mod.features.set('multi-memory', `data segment ${i} for a second memory`);
            throw new RefusedFeature('multi-memory');
          }
          if (flags > 2) body.fail(`invalid data segment flags ${flags}`, flagsAt);
          if (flags !== 1) where(`data segment ${i}`).read(true);
          const len = body.u32('data segment length');
          body.bytes(len, 'data segment');
          mod.dataBytes += len;
        }
        break;
      }
      case SECTION.tag:
        mod.features.set('exception-handling', `a tag section at ${at(sectionStart)}`);
        throw new RefusedFeature('exception-handling');
      default:
        unsupported(`the plugin's core module has a section with id ${id} (at ${at(sectionStart)}), which wasmux does not know`);
    }
  }

  mod.exports.forEach((e, i) => {
    if (e.kind === 'func') e.signature = funcSigs[exportIndices[i]!] ?? '(unknown type)';
  });
}

function readElement(r: Reader, ex: ExpressionReader, mod: CoreModule, i: number): void {
  const start = r.pos;
  const flags = r.u32('element segment flags');
  if (flags > 7) r.fail(`invalid element segment flags ${flags}`, start);
  if (flags !== 0) mod.features.set('reference-types', `element segment ${i} of kind ${flags} at ${at(start)}`);
  if ((flags & 0x03) === 0x02) r.u32('table index');
  if ((flags & 0x01) === 0) ex.read(true); // active: its offset
  const expressions = (flags & 0x04) !== 0;
  if ((flags & 0x03) !== 0) {
    if (expressions) ex.valtype('element type');
    else if (r.u8('element kind') !== 0) r.fail('invalid element kind', start);
  }
  const n = r.count('element segment items', 1);
  mod.elementItems += n;
  for (let k = 0; k < n; k++) {
    if (expressions) ex.read(true);
    else r.u32('function index');
  }
}
