/**
 * `wasmux new`: a plugin project from the templates shipped in the package
 * (templates/common/ for every project, templates/<name>/ for one kind),
 * with no network. The project's package.json is written here, from the
 * versions this wasmux is tested with; every other file is a template file
 * with {{name}} and {{port}} filled in.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmuxError } from '../errors.js';

const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TEMPLATES = join(PACKAGE_ROOT, 'templates');

/** The kinds of project `wasmux new` writes; the first is the default. */
export const TEMPLATE_NAMES = ['line', 'http'] as const;
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

export const TEMPLATE_INFO: Record<TemplateName, { summary: string; port: number }> = {
  line: { summary: "a line protocol on the SDK's Server (test with nc)", port: 7000 },
  http: { summary: "an HTTP/1.1 handler on the SDK's HTTP server (test with curl)", port: 8080 },
};

export interface NewProjectRequest {
  /** The directory to create (or an empty one to fill); its base name is the package's name. */
  readonly dir: string;
  readonly template: string;
  /**
   * How the project's package.json names wasmux: an npm version range, or
   * a path to a wasmux tarball or checkout (written as a file: spec relative
   * to the project). [^<this wasmux's version>]
   */
  readonly wasmux?: string;
}

export interface NewProject {
  readonly dir: string;
  readonly name: string;
  readonly files: string[];
}

interface OwnPackage {
  version: string;
  engines: { node: string };
  peerDependencies: Record<string, string>;
}

// A name npm accepts for a new package (lowercase, URL-safe, no leading dot
// or underscore, at most 214 characters) that also fits in the template's
// source and JSON without escaping.
const PACKAGE_NAME = /^[a-z0-9][a-z0-9._~-]*$/;

/** Why `name` cannot name a plugin project, or null. */
export function badProjectName(name: string): string | null {
  if (!PACKAGE_NAME.test(name) || name.length > 214) {
    return `"${name}" is not a valid package name: use lowercase letters, digits, "-", "." and "_", starting with a letter or digit (e.g. "my-plugin")`;
  }
  if (builtinModules.includes(name)) return `"${name}" is the name of a Node.js core module; npm refuses it as a package name`;
  if (['wasmux', 'assemblyscript', 'node_modules', 'favicon.ico'].includes(name)) {
    return `"${name}" cannot name the project${name === 'wasmux' || name === 'assemblyscript' ? ': npm does not install a dependency into a package of the same name' : ''}`;
  }
  return null;
}

/** The devDependency spec for wasmux: a range as given, or a local path as file:, relative to the project. */
function wasmuxSpec(given: string | undefined, projectDir: string, version: string): string {
  if (given === undefined) return `^${version}`;
  const local = given.startsWith('file:') ? given.slice(5) : given;
  const looksLikePath = given.startsWith('file:') || local.startsWith('.') || isAbsolute(local) || local.endsWith('.tgz');
  if (!looksLikePath) return given;
  const abs = resolve(local);
  if (!existsSync(abs)) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--wasmux ${given}: no such file or directory`);
  const rel = relative(projectDir, abs).split(sep).join('/');
  return `file:${rel.startsWith('.') ? rel : `./${rel}`}`;
}

async function copyTree(from: string, to: string, fill: (text: string) => string, out: string[], root: string): Promise<void> {
  for (const e of await readdir(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    // npm leaves a file named .gitignore out of a package: it ships as gitignore.
    const dst = join(to, e.name === 'gitignore' ? '.gitignore' : e.name);
    if (e.isDirectory()) {
      await mkdir(dst, { recursive: true });
      await copyTree(src, dst, fill, out, root);
    } else {
      await writeFile(dst, fill(await readFile(src, 'utf8')));
      out.push(relative(root, dst).split(sep).join('/'));
    }
  }
}

export async function newProject(req: NewProjectRequest): Promise<NewProject> {
  if (!(TEMPLATE_NAMES as readonly string[]).includes(req.template)) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `unknown template "${req.template}" (templates: ${TEMPLATE_NAMES.join(', ')})`);
  }
  const template = req.template as TemplateName;
  const dir = resolve(req.dir);
  const name = basename(dir);
  const bad = badProjectName(name);
  if (bad !== null) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${bad}; the directory's name is the project's`);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${req.dir} exists and is not a directory`);
    const entries = readdirSync(dir);
    if (entries.length > 0) {
      throw new WasmuxError(
        'WASMUX_ERR_BAD_ARGUMENT',
        `${req.dir} is not empty (it holds ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, e.g. "${entries[0]}"); wasmux new writes only into a new or empty directory`,
      );
    }
  }
  if (!existsSync(dirname(dir))) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${dirname(req.dir) || '.'} does not exist`);

  const own = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as OwnPackage;
  const spec = wasmuxSpec(req.wasmux, dir, own.version);
  const { port } = TEMPLATE_INFO[template];
  const fill = (text: string) => text.replaceAll('{{name}}', name).replaceAll('{{port}}', String(port));

  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  await copyTree(join(TEMPLATES, 'common'), dir, fill, files, dir);
  await copyTree(join(TEMPLATES, template), dir, fill, files, dir);
  const pkg = {
    name,
    version: '0.1.0',
    private: true,
    description: `A wasmux plugin (${TEMPLATE_INFO[template].summary.replace(/ \(.*\)$/, '')})`,
    type: 'module',
    scripts: {
      build: 'wasmux build',
      'build:debug': 'wasmux build --target debug',
      pretest: 'wasmux build',
      test: 'node --test',
      start: `wasmux run build/${name}.wasm --listen 127.0.0.1:${port}`,
      // Serves where start does (wasmux dev reads start's --listen).
      dev: 'wasmux dev',
    },
    engines: own.engines,
    devDependencies: {
      '@bytecodealliance/jco': own.peerDependencies['@bytecodealliance/jco'],
      assemblyscript: own.peerDependencies['assemblyscript'],
      wasmux: spec,
    },
  };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  files.push('package.json');
  return { dir, name, files: files.sort() };
}
