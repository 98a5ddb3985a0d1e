/**
 * Loading a plugin: read the component, refuse what wasmux must not run
 * (imports outside the world, then the core module's features, limits and
 * ABI: validate.ts), compile the guest's core module once (the compiled
 * module is shared by every worker of the plugin).
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { WasmuxError } from '../errors.js';
import { WORLD_INTERFACES } from '../generated/world-abi.js';
import { readComponent, type ComponentInfo, type ComponentImport } from './component.js';
import { readCoreModule } from './core-module.js';
import { checkCoreModule } from './validate.js';

export interface LoadedPlugin {
  /** The file's base name without `.wasm`, or the name given. */
  readonly name: string;
  readonly info: ComponentInfo;
  readonly module: WebAssembly.Module;
}

/** The full interface name of an import (`wasi:clocks/wall-clock@0.2.0`). */
export function importName(i: ComponentImport): string {
  return i.name + (i.versionSuffix ?? '');
}

/** Checks a component against the plugin world. Throws a WasmuxError naming the problem. */
export function checkComponent(info: ComponentInfo): void {
  for (const i of info.imports) {
    // A type import (`context`) only names a type the world shares.
    if (i.kind === 'type') continue;
    const name = importName(i);
    if (i.kind !== 'instance' || !WORLD_INTERFACES.includes(name)) {
      throw new WasmuxError(
        'WASMUX_ERR_FORBIDDEN_IMPORT',
        `the plugin imports ${i.kind} "${name}", which wasmux does not provide; allowed: ${WORLD_INTERFACES.join(', ')}`,
      );
    }
  }
  if (!info.exports.some((e) => e.name === 'run' && e.kind === 'func')) {
    throw new WasmuxError('WASMUX_ERR_MISSING_EXPORT', 'the plugin does not export the function "run" of the wasmux:plugin/plugin world');
  }
}

export async function compilePlugin(bytes: Uint8Array, name: string): Promise<LoadedPlugin> {
  const info = readComponent(bytes);
  checkComponent(info);
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(info.mainModule.bytes as Uint8Array<ArrayBuffer>);
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_MALFORMED', `the plugin's core module does not compile: ${(e as Error).message}`, { cause: e });
  }
  // The engine has validated the module; now judge what it contains.
  checkCoreModule(readCoreModule(info.mainModule.bytes));
  return { name, info, module };
}

/** Reads and compiles the plugin at `path`, named `name` (default: the file's name without `.wasm`). */
export async function loadPlugin(path: string, name = basename(path).replace(/\.wasm$/, '')): Promise<LoadedPlugin> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_IO', `cannot read plugin ${path}: ${(e as Error).message}`, { cause: e });
  }
  return compilePlugin(bytes, name);
}
