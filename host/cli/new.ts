/** `wasmux new`: a plugin project from a template (host/build/new-project.ts). */
import { relative } from 'node:path';
import { parseArgs } from 'node:util';
import { WasmuxError } from '../errors.js';
import { TEMPLATE_INFO, TEMPLATE_NAMES, newProject } from '../build/new-project.js';
import { parsed } from './args.js';

export function newHelp(): string {
  const templates = TEMPLATE_NAMES.map((t) => `  ${t.padEnd(8)}${TEMPLATE_INFO[t].summary}`).join('\n');
  return `Usage: wasmux new <dir> [--template <name>] [--wasmux <spec>]

Writes a plugin project into <dir> (a new or empty directory; its name is
the package's name): package.json, asconfig.json, assembly/index.ts (the
plugin, commented), test/plugin.test.mjs (tests through wasmux's serve()
on port 0 and a real socket), README.md, .gitignore. Nothing is downloaded.
Then:

  cd <dir>
  npm install     # wasmux, assemblyscript, @bytecodealliance/jco
  npm test        # builds build/<dir>.wasm and tests it
  npm start       # serves it

Templates:
${templates}

Options:
  --template <name>  the kind of plugin                  [default: ${TEMPLATE_NAMES[0]}]
  --wasmux <spec>    how package.json names wasmux: a version range, or the
                     path of a wasmux tarball or checkout (written as file:)
                                           [default: ^ this wasmux's version]
  -h, --help         show this help
`;
}

export async function newCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        template: { type: 'string', default: TEMPLATE_NAMES[0] },
        wasmux: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }),
  );
  if (values.help) {
    process.stdout.write(newHelp());
    return 0;
  }
  if (positionals.length !== 1) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', 'new needs exactly one directory (see wasmux new --help)');
  const created = await newProject({
    dir: positionals[0]!,
    template: values.template as string,
    wasmux: values.wasmux as string | undefined,
  });
  const where = relative(process.cwd(), created.dir) || '.';
  process.stdout.write(`created ${where} (template ${values.template}): ${created.files.join(', ')}

  cd ${where}
  npm install
  npm test
  npm start
`);
  return 0;
}
