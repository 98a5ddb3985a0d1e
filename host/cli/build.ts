/** `wasmux build`: a plugin project's sources -> a checked component (host/build/plugin-build.ts). */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { WasmuxError } from '../errors.js';
import { BUILD_TARGETS, buildPlugin, type BuildTarget } from '../build/plugin-build.js';
import { writeStderrLine } from '../supervisor/logger.js';
import { parsed } from './args.js';

export function buildHelp(): string {
  return `Usage: wasmux build [--target release|debug] [-o <file>]

Builds the plugin project in the current directory: compiles the entries
of its asconfig.json with asc (AssemblyScript's own format: "entries",
"options", "targets"), embeds the wasmux world, makes the component with
jco, checks it as wasmux run would, and prints its path, size and SHA-256.
The same sources give the same bytes.

build applies what the runtime needs (the incremental GC runtime, the
_initialize start export, the SDK's abort, the world's exports) and refuses
an asconfig.json setting that contradicts one of them, naming the key.
asc's diagnostics are printed as asc prints them; then the exit status is 1
and no file is written. Needs assemblyscript and @bytecodealliance/jco in
the project's devDependencies.

Options:
  --target <name>   the asconfig.json target: release, or debug (keeps the
                    name section: a trap's log line names guest functions)
                                                          [default: release]
  -o <file>         where to write the component   [default: the target's
                    outFile in asconfig.json, else build/<target>.wasm]
  -h, --help        show this help
`;
}

export async function buildCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: { target: { type: 'string', default: 'release' }, o: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h' } },
    }),
  );
  if (values.help) {
    process.stdout.write(buildHelp());
    return 0;
  }
  if (positionals.length > 0)
    throw new WasmuxError(
      'WASMUX_ERR_BAD_ARGUMENT',
      `build takes no file arguments (got "${positionals[0]}"); it reads asconfig.json (see wasmux build --help)`,
    );
  const target = values.target as string;
  if (!(BUILD_TARGETS as readonly string[]).includes(target)) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--target must be ${BUILD_TARGETS.join(' or ')} (got "${target}")`);
  }
  const projectDir = process.cwd();
  let built: Awaited<ReturnType<typeof buildPlugin>>;
  try {
    built = await buildPlugin({ projectDir, target: target as BuildTarget, diagnostics: process.stderr });
  } catch (e) {
    // A build that fails is the project's problem, not a usage error: exit 1.
    if (!(e instanceof WasmuxError)) throw e;
    writeStderrLine(`wasmux: error ${e.code}: ${e.message}`);
    return 1;
  }
  const out = resolve(projectDir, values.o ?? built.outFile ?? `build/${target}.wasm`);
  await mkdir(dirname(out), { recursive: true });
  // Never a half-written plugin where `wasmux run` may pick it up.
  const partial = `${out}.partial`;
  await writeFile(partial, built.bytes);
  await rename(partial, out);
  process.stdout.write(`built ${relative(projectDir, out) || out} (${built.bytes.length} bytes, sha256 ${built.sha256})\n`);
  return 0;
}
