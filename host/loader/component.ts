/**
 * A reader for the WebAssembly component binary format, just deep enough for
 * the loader: the component's imports and exports, its embedded core modules
 * (with their own imports and exports) and its custom section names.
 *
 * wasmux does not run jco's generated glue; it instantiates the plugin's core
 * module itself, so it needs that module's bytes and an honest account of what
 * the component asks for before anything is compiled. Plugin files come from
 * users, so every read is bounds-checked and every loop is bounded by the bytes
 * left: bad input ends in a WasmuxError, never a RangeError or a hang.
 *
 * Format: component-model design/mvp/Binary.md (component version 0x0d) and the
 * core WebAssembly binary format for the embedded modules.
 */
import { createHash } from 'node:crypto';
import { WasmuxError } from '../errors.js';
import { Reader, at, malformed } from './reader.js';

export type ComponentExternKind = 'instance' | 'func' | 'module' | 'component' | 'value' | 'type';
export type CoreExternKind = 'func' | 'table' | 'memory' | 'global' | 'tag';

export interface ComponentImport {
  name: string;
  kind: ComponentExternKind;
  /** Set when the name is a canonical interface version (`…@0.2`) and the full version lives here (`.1`). */
  versionSuffix?: string;
  /** Set when a plain name (`x`) declares the interface it implements (`a:b/c`). */
  implements?: string;
}

export interface ComponentExport {
  name: string;
  kind: ComponentExternKind;
  versionSuffix?: string;
  implements?: string;
}

export interface CoreImport {
  module: string;
  name: string;
  kind: CoreExternKind;
}

export interface CoreExport {
  name: string;
  kind: CoreExternKind;
}

export interface CoreModuleInfo {
  /** The module's bytes: a view into the component's buffer, not a copy. */
  bytes: Uint8Array;
  imports: CoreImport[];
  exports: CoreExport[];
}

export interface ComponentInfo {
  size: number;
  /** Hex SHA-256 of the whole file. */
  sha256: string;
  /** Top-level imports, in file order. */
  imports: ComponentImport[];
  /** Top-level exports, in file order. */
  exports: ComponentExport[];
  /** Every top-level core module, in file order. */
  coreModules: CoreModuleInfo[];
  /** The plugin's own code: the one core module exporting `memory` and a function `run`. */
  mainModule: CoreModuleInfo;
  /** Names of the top-level custom sections, in file order. */
  customSections: string[];
}

const MAGIC = [0x00, 0x61, 0x73, 0x6d];
const PREAMBLE_SIZE = 8;
const COMPONENT_VERSION = 0x0d;
const COMPONENT_LAYER = 1;
const CORE_VERSION = 1;

const SECTION_NAMES = [
  'custom',
  'core module',
  'core instance',
  'core type',
  'component',
  'instance',
  'alias',
  'type',
  'canon',
  'start',
  'import',
  'export',
  'value',
];
const SECTION = { custom: 0, coreModule: 1, component: 4, import: 10, export: 11 } as const;
const CORE_SECTION = { import: 2, export: 7 } as const;

/** Component sorts and externdesc kinds share bytes 0x01-0x05; 0x00 introduces a core sort. */
const SORT_KINDS: readonly ComponentExternKind[] = ['module', 'func', 'value', 'type', 'component', 'instance'];
const CORE_SORT_MODULE = 0x11;
const CORE_KINDS: readonly CoreExternKind[] = ['func', 'table', 'memory', 'global', 'tag'];

/** i32 i64 f32 f64 v128, and the one-byte shorthands for abstract reference types (exnref … nullexnref). */
const ONE_BYTE_VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74]);
const REF_NULL = 0x63;
const REF = 0x64;
const SHARED_HEAPTYPE = 0x65;
const LIMITS_HAS_MAX = 0x01;
const LIMITS_64 = 0x04;
const LIMITS_PAGE_SIZE = 0x08;
/** has-max, shared, 64-bit index, custom page size. */
const MEMORY_FLAGS = 0x0f;
/** Tables have no custom page size. */
const TABLE_FLAGS = 0x07;

export function readComponent(bytes: Uint8Array): ComponentInfo {
  checkPreamble(bytes);
  const parts: Sections = { imports: [], exports: [], coreModules: [], customSections: [] };
  const reader = new Reader(bytes, PREAMBLE_SIZE, bytes.length);
  while (!reader.atEnd()) readSection(reader, parts);
  return {
    size: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    ...parts,
    mainModule: pickMainModule(parts.coreModules),
  };
}

interface Sections {
  imports: ComponentImport[];
  exports: ComponentExport[];
  coreModules: CoreModuleInfo[];
  customSections: string[];
}

function checkPreamble(bytes: Uint8Array): void {
  if (bytes.length < PREAMBLE_SIZE || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new WasmuxError('WASMUX_ERR_NOT_WASM', `not a WebAssembly file: ${describeNonWasm(bytes)}`);
  }
  const version = bytes[4] | (bytes[5] << 8);
  const layer = bytes[6] | (bytes[7] << 8);
  if (layer === 0) {
    throw new WasmuxError(
      'WASMUX_ERR_NOT_COMPONENT',
      `this is a core WebAssembly module (version ${version}), not a component. wasmux runs components: ` +
        'build the plugin with `npm run build`, or embed the plugin WIT in the module and wrap it with `jco new`',
    );
  }
  if (layer !== COMPONENT_LAYER) {
    throw malformed(`unknown binary layer ${layer} (1 is a component, 0 a core module)`, 6);
  }
  if (version !== COMPONENT_VERSION) {
    throw new WasmuxError(
      'WASMUX_ERR_UNSUPPORTED_SHAPE',
      `component binary format version ${version} is not supported; wasmux reads version ${COMPONENT_VERSION}, ` +
        'which current jco and wasm-tools produce: rebuild the plugin with them',
    );
  }
}

function describeNonWasm(bytes: Uint8Array): string {
  if (bytes.length === 0) return 'the file is empty';
  const head = bytes.subarray(0, 16);
  if (head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f))) {
    return `it starts with the text "${String.fromCharCode(...head)}", not the \\0asm magic bytes`;
  }
  if (bytes.length < PREAMBLE_SIZE) return `it is only ${bytes.length} bytes long, shorter than a WebAssembly header`;
  return 'it does not start with the \\0asm magic bytes';
}

function readSection(r: Reader, out: Sections): void {
  const start = r.pos;
  const id = r.u8('section id');
  const kind = SECTION_NAMES[id];
  if (kind === undefined) r.fail(`unknown section id ${id}`, start);
  const size = r.u32(`size of the ${kind} section`);
  if (size > r.remaining) {
    r.fail(`the ${kind} section declares ${size} bytes but only ${r.remaining} remain in the file`, start);
  }
  const body = r.sub(size, `${kind} section`);
  switch (id) {
    case SECTION.custom:
      out.customSections.push(body.name('custom section name'));
      return;
    case SECTION.coreModule:
      out.coreModules.push(readCoreModule(body));
      return;
    case SECTION.component:
      throw new WasmuxError(
        'WASMUX_ERR_UNSUPPORTED_SHAPE',
        `the component contains a nested component (section at ${at(start)}); wasmux runs only flat ` +
          'components like those `jco new` makes from a single core module',
      );
    case SECTION.import:
      readVector(body, 'imports', 3, () => out.imports.push(readImport(body)));
      return;
    case SECTION.export:
      readVector(body, 'exports', 4, () => out.exports.push(readExport(body)));
      return;
  }
}

/** Reads a whole section that is one vector; the items must use up the section exactly. */
function readVector(r: Reader, what: string, minItemBytes: number, readItem: () => void): void {
  const n = r.count(what, minItemBytes);
  for (let i = 0; i < n; i++) readItem();
  r.expectEnd(`the ${what}`);
}

function readImport(r: Reader): ComponentImport {
  const name = readExternName(r, 'import');
  return { ...name, kind: readExternDesc(r) };
}

function readExport(r: Reader): ComponentExport {
  const name = readExternName(r, 'export');
  const kind = readSortIdx(r);
  const start = r.pos;
  const hasType = r.u8('export type flag');
  if (hasType === 1) readExternDesc(r);
  else if (hasType !== 0) r.fail(`invalid export type flag 0x${hasType.toString(16)}`, start);
  return { ...name, kind };
}

interface ExternName {
  name: string;
  versionSuffix?: string;
  implements?: string;
}

function readExternName(r: Reader, what: string): ExternName {
  const start = r.pos;
  const tag = r.u8(`${what} name tag`);
  const name = r.name(`${what} name`);
  switch (tag) {
    case 0x00:
      return { name };
    case 0x01:
      return withSuffix(
        name,
        r.attempt(() => readVersionSuffix(r)),
      );
    case 0x02:
      return readNameOptions(r, name, what);
    default:
      return r.fail(`invalid ${what} name tag 0x${tag.toString(16)}`, start);
  }
}

function withSuffix(name: string, versionSuffix: string | undefined): ExternName {
  return versionSuffix === undefined ? { name } : { name, versionSuffix };
}

const VERSION_SUFFIX = /^[.+-][0-9A-Za-z.+-]+$/;

/**
 * 0x01 has meant two things. wasm-tools before 1.217 wrote it before every
 * interface name with nothing after the name; the spec's interface-version
 * canonicalization writes `0x01 name versionsuffix`. What follows the name
 * tells them apart: a suffix is a length of at least 2 and that many semver
 * characters starting with `.`, `-` or `+`, whereas in the old form the byte
 * after the externdesc or sortidx kind is 0x00/0x01, a LEB continuation byte or
 * the next item's tag, none of them a semver character.
 */
function readVersionSuffix(r: Reader): string | undefined {
  const suffix = r.name('version suffix');
  return VERSION_SUFFIX.test(suffix) ? suffix : undefined;
}

/** The form wasm-tools 1.2xx writes for names with options: `0x02 name vec(0x00 implements | 0x01 versionsuffix)`. */
function readNameOptions(r: Reader, name: string, what: string): ExternName {
  const out: ExternName = { name };
  const n = r.count(`${what} name options`, 2);
  for (let i = 0; i < n; i++) {
    const start = r.pos;
    const option = r.u8(`${what} name option`);
    if (option === 0x00) out.implements = r.name('implemented interface name');
    else if (option === 0x01) out.versionSuffix = r.name('version suffix');
    else r.fail(`unknown ${what} name option 0x${option.toString(16)}`, start);
  }
  return out;
}

function readExternDesc(r: Reader): ComponentExternKind {
  const start = r.pos;
  const kind = r.u8('import/export type');
  switch (kind) {
    case 0x00:
      if (r.u8('core sort') !== CORE_SORT_MODULE) {
        r.fail('an import or export type names a core item other than a module', start);
      }
      r.u32('core module type index');
      break;
    case 0x02:
      skipValueBound(r);
      break;
    case 0x03:
      skipTypeBound(r);
      break;
    case 0x01:
    case 0x04:
    case 0x05:
      r.u32('type index');
      break;
    default:
      r.fail(`invalid import/export type 0x${kind.toString(16)}`, start);
  }
  return SORT_KINDS[kind];
}

function skipValueBound(r: Reader): void {
  const start = r.pos;
  const bound = r.u8('value bound');
  if (bound === 0x00) r.u32('value index');
  // A component value type: a primitive type byte or an s33 type index.
  else if (bound === 0x01) r.skipLeb(5, 'value type');
  else r.fail(`invalid value bound 0x${bound.toString(16)}`, start);
}

function skipTypeBound(r: Reader): void {
  const start = r.pos;
  const bound = r.u8('type bound');
  if (bound === 0x00) r.u32('type index');
  else if (bound !== 0x01) r.fail(`invalid type bound 0x${bound.toString(16)}`, start);
}

function readSortIdx(r: Reader): ComponentExternKind {
  const start = r.pos;
  const sort = r.u8('export sort');
  if (sort === 0x00 && r.u8('core sort') !== CORE_SORT_MODULE) {
    r.fail('a component export names a core item other than a module', start);
  }
  if (sort >= SORT_KINDS.length) r.fail(`invalid export sort 0x${sort.toString(16)}`, start);
  r.u32('export index');
  return SORT_KINDS[sort];
}

function readCoreModule(r: Reader): CoreModuleInfo {
  const start = r.pos;
  const bytes = r.rest();
  const header = r.bytes(PREAMBLE_SIZE, 'core module header');
  const version = header[4] | (header[5] << 8) | (header[6] << 16) | (header[7] << 24);
  if (MAGIC.some((b, i) => header[i] !== b) || version !== CORE_VERSION) {
    r.fail('an embedded core module does not start with a core WebAssembly header', start);
  }
  const module: CoreModuleInfo = { bytes, imports: [], exports: [] };
  while (!r.atEnd()) readCoreSection(r, module);
  return module;
}

/** Sections other than imports and exports are skipped: the engine validates the module when it compiles it. */
function readCoreSection(r: Reader, module: CoreModuleInfo): void {
  const start = r.pos;
  const id = r.u8('core section id');
  const size = r.u32('core section size');
  if (size > r.remaining) {
    r.fail(`a core module section (id ${id}) declares ${size} bytes but only ${r.remaining} remain in the module`, start);
  }
  const body = r.sub(size, 'core module section');
  if (id === CORE_SECTION.import) {
    readVector(body, 'core imports', 4, () => module.imports.push(readCoreImport(body)));
  } else if (id === CORE_SECTION.export) {
    readVector(body, 'core exports', 3, () => module.exports.push(readCoreExport(body)));
  }
}

function readCoreImport(r: Reader): CoreImport {
  const module = r.name('core import module name');
  const name = r.name('core import name');
  return { module, name, kind: readCoreImportDesc(r) };
}

function readCoreImportDesc(r: Reader): CoreExternKind {
  const start = r.pos;
  const kind = r.u8('core import kind');
  switch (kind) {
    case 0:
      r.u32('function type index');
      break;
    case 1:
      skipRefType(r);
      skipLimits(r, TABLE_FLAGS, 'table');
      break;
    case 2:
      skipLimits(r, MEMORY_FLAGS, 'memory');
      break;
    case 3:
      skipValType(r);
      skipMutability(r);
      break;
    case 4:
      if (r.u8('tag attribute') !== 0) r.fail('invalid tag attribute', start);
      r.u32('tag type index');
      break;
    default:
      r.fail(`invalid core import kind 0x${kind.toString(16)}`, start);
  }
  return CORE_KINDS[kind];
}

function readCoreExport(r: Reader): CoreExport {
  const name = r.name('core export name');
  const start = r.pos;
  const kind = r.u8('core export kind');
  if (kind >= CORE_KINDS.length) r.fail(`invalid core export kind 0x${kind.toString(16)}`, start);
  r.u32('core export index');
  return { name, kind: CORE_KINDS[kind] };
}

/** Limits: flags, then min and optional max (u64 when 64-bit), then the log2 page size when flagged. */
function skipLimits(r: Reader, allowedFlags: number, what: string): void {
  const start = r.pos;
  const flags = r.u8(`${what} limits`);
  if ((flags & ~allowedFlags) !== 0) r.fail(`invalid ${what} limits flags 0x${flags.toString(16)}`, start);
  const maxBytes = flags & LIMITS_64 ? 10 : 5;
  r.skipLeb(maxBytes, `${what} minimum`);
  if (flags & LIMITS_HAS_MAX) r.skipLeb(maxBytes, `${what} maximum`);
  if (flags & LIMITS_PAGE_SIZE) r.u32(`${what} page size`);
}

function skipValType(r: Reader): void {
  const start = r.pos;
  const type = r.u8('value type');
  if (type === REF_NULL || type === REF) skipHeapType(r);
  else if (!ONE_BYTE_VALTYPES.has(type)) r.fail(`invalid value type 0x${type.toString(16)}`, start);
}

function skipRefType(r: Reader): void {
  const start = r.pos;
  const type = r.u8('reference type');
  if (type === REF_NULL || type === REF) skipHeapType(r);
  else if (type < 0x69 || type > 0x74) r.fail(`invalid reference type 0x${type.toString(16)}`, start);
}

/** An abstract heap type byte or a type index, both s33, optionally marked shared. */
function skipHeapType(r: Reader): void {
  if (r.remaining > 0 && r.rest()[0] === SHARED_HEAPTYPE) r.u8('shared marker');
  r.skipLeb(5, 'heap type');
}

function skipMutability(r: Reader): void {
  const start = r.pos;
  const flags = r.u8('global mutability');
  // Bit 0 is mutable; bit 1 is shared (shared-everything threads).
  if ((flags & ~0x03) !== 0) r.fail(`invalid global mutability 0x${flags.toString(16)}`, start);
}

function exportsItem(module: CoreModuleInfo, name: string, kind: CoreExternKind): boolean {
  return module.exports.some((e) => e.name === name && e.kind === kind);
}

/** wit-component also embeds shim and fixup modules for lowering imports; only the plugin's code has both. */
function pickMainModule(modules: CoreModuleInfo[]): CoreModuleInfo {
  const candidates = modules.filter((m) => exportsItem(m, 'memory', 'memory') && exportsItem(m, 'run', 'func'));
  if (candidates.length === 1) return candidates[0];
  const found = `the component embeds ${modules.length} core module${modules.length === 1 ? '' : 's'}`;
  throw new WasmuxError(
    'WASMUX_ERR_UNSUPPORTED_SHAPE',
    candidates.length === 0
      ? `no embedded core module exports both a memory "memory" and a function "run" (${found}); ` +
          'is this a wasmux plugin built against the wasmux:plugin world?'
      : `${candidates.length} embedded core modules export both "memory" and "run" (${found}); ` +
          'wasmux cannot tell which one is the plugin',
  );
}
