#!/usr/bin/env node
/** The `wasmux` command: wiring only; each command lives in its own file. */
import { WasmuxError } from '../errors.js';
import { writeStderrLine } from '../supervisor/logger.js';
import { runCommand, runHelp } from './run.js';
import { inspectCommand, inspectHelp } from './inspect.js';
import { buildCommand, buildHelp } from './build.js';
import { newCommand, newHelp } from './new.js';
import { testCommand, testHelp } from './test.js';
import { replayCommand, replayHelp } from './replay.js';
import { devCommand, devHelp } from './dev.js';

const HELP = `Usage: wasmux <command> [options]

Commands:
  run <plugin.wasm>       serve a plugin (see wasmux run --help)
  inspect <plugin.wasm>   show a plugin's world, imports, exports, size, sha256
  new <dir>               start a plugin project (see wasmux new --help)
  build                   build the plugin project here (see wasmux build --help)
  dev [<dir>]             serve a project, rebuilt and reloaded on each change
  test <plugin.wasm>      run a scenario on a simulated network under many seeds, with faults
  replay <trace>          re-run a recorded instance offline (see wasmux replay --help)

Options:
  -h, --help              show this help
  --version               show the version
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return runCommand(rest);
    case 'inspect':
      return inspectCommand(rest);
    case 'build':
      return buildCommand(rest);
    case 'new':
      return newCommand(rest);
    case 'test':
      return testCommand(rest);
    case 'replay':
      return replayCommand(rest);
    case 'dev':
      return devCommand(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(
        (
          {
            run: runHelp,
            inspect: inspectHelp,
            build: buildHelp,
            new: newHelp,
            test: testHelp,
            replay: replayHelp,
            dev: devHelp,
          } as Record<string, () => string>
        )[rest[0] ?? '']?.() ?? HELP,
      );
      return command === undefined ? 2 : 0;
    case '--version': {
      const { createRequire } = await import('node:module');
      process.stdout.write(`${createRequire(import.meta.url)('../../../package.json').version}\n`);
      return 0;
    }
    default:
      throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `unknown command "${command}" (see wasmux --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof WasmuxError) {
      // The message may quote the plugin (an import's name): one line, escaped.
      writeStderrLine(`wasmux: error ${e.code}: ${e.message}`);
      process.exitCode = 2;
    } else {
      writeStderrLine(`wasmux: internal error: ${e instanceof Error ? e.stack : String(e)}`);
      process.exitCode = 70;
    }
  },
);
