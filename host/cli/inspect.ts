/** `wasmux inspect`: what a plugin file is, imports and exports, without running it. */
import { readFile } from 'node:fs/promises';
import { WasmuxError } from '../errors.js';
import { readComponent } from '../loader/component.js';
import { checkComponent, compilePlugin, importName } from '../loader/plugin.js';
import { parseArgs } from 'node:util';
import { parsed } from './args.js';

export function inspectHelp(): string {
  return `Usage: wasmux inspect <plugin.wasm> [--json]

Prints what a plugin component contains: the world it targets, its imports
and exports, its size and SHA-256, and whether wasmux would run it.

Options:
  --json       machine-readable output
  -h, --help   show this help
`;
}

export async function inspectCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({ args: argv, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }),
  );
  if (values.help) {
    process.stdout.write(inspectHelp());
    return 0;
  }
  if (positionals.length !== 1)
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', 'inspect needs exactly one plugin file (see wasmux inspect --help)');
  const path = positionals[0]!;
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_IO', `cannot read ${path}: ${(e as Error).message}`);
  }
  const info = readComponent(bytes);
  const problem = async (check: () => unknown): Promise<string | null> => {
    try {
      await check();
      return null;
    } catch (e) {
      if (!(e instanceof WasmuxError)) throw e;
      return `${e.code}: ${e.message}`;
    }
  };
  // The binary does not record its world's name; it targets the wasmux
  // world exactly when every import is one of its interfaces and it exports run.
  const targetsWorld = (await problem(() => checkComponent(info))) === null;
  // Runnable: everything the loader checks (the core module's features, ABI and limits too).
  const verdict = await problem(() => compilePlugin(bytes, path));
  const imports = info.imports.filter((i) => i.kind !== 'type').map(importName);
  const exports = info.exports.map((e) => `${e.name} (${e.kind})`);
  const world = targetsWorld ? 'wasmux:plugin/plugin@0.1.0' : 'unknown (not the wasmux plugin world)';
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify(
        { file: path, world, size: info.size, sha256: info.sha256, imports, exports, runnable: verdict === null, problem: verdict },
        null,
        2,
      )}\n`,
    );
  } else {
    process.stdout.write(
      `file     ${path}\n` +
        `world    ${world}\n` +
        `size     ${info.size} bytes\n` +
        `sha256   ${info.sha256}\n` +
        `imports  ${imports.length ? imports.join('\n         ') : '(none)'}\n` +
        `exports  ${exports.length ? exports.join('\n         ') : '(none)'}\n` +
        `runnable ${verdict === null ? 'yes' : `no: ${verdict}`}\n`,
    );
  }
  return verdict === null ? 0 : 1;
}
