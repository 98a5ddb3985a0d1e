// `wasmux new`: what it writes, and what it refuses (a non-empty directory,
// a name npm would not take, an unknown template) with a clear message,
// status 2 and nothing written. The whole path from a packed tarball to a
// running plugin is test/new-project.test.ts.
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, wasmux } from './helpers/cli.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function scratch(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'wasmux-new-cmd-'));
  dirs.push(d);
  return d;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

describe('wasmux new', () => {
  it('--help names the templates and options; wasmux --help lists the command', async () => {
    const r = await wasmux(['new', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: wasmux new <dir> [--template <name>] [--wasmux <spec>]');
    expect(r.stdout).toMatch(/^ {2}line {4}a line protocol/m);
    expect(r.stdout).toMatch(/^ {2}http {4}an HTTP\/1\.1 handler/m);
    expect(r.stdout).toMatch(/--template <name>.*\[default: line\]/);
    expect((await wasmux(['--help'])).stdout).toMatch(/^ {2}new <dir> /m);
    expect((await wasmux(['help', 'new'])).stdout).toBe(r.stdout);
  });

  it('writes a complete project, every placeholder filled, package.json naming the tested toolchain', async () => {
    const parent = await scratch();
    const r = await wasmux(['new', 'my-plugin'], 20_000, { cwd: parent });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('created my-plugin (template line)');
    expect(r.stdout).toMatch(/cd my-plugin\n {2}npm install\n {2}npm test\n {2}npm start\n$/);
    const dir = join(parent, 'my-plugin');
    const files = await filesUnder(dir);
    expect(files).toEqual([
      '.gitignore',
      'README.md',
      'asconfig.json',
      'assembly/index.ts',
      'assembly/tsconfig.json',
      'package.json',
      'test/plugin.test.mjs',
    ]);
    for (const f of files) expect(await readFile(join(dir, f), 'utf8'), f).not.toContain('{{');

    const ours = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('my-plugin');
    expect(pkg.devDependencies).toEqual({
      '@bytecodealliance/jco': ours.peerDependencies['@bytecodealliance/jco'],
      assemblyscript: ours.peerDependencies.assemblyscript,
      wasmux: `^${ours.version}`,
    });
    expect(pkg.scripts).toMatchObject({
      build: 'wasmux build',
      test: 'node --test',
      start: 'wasmux run build/my-plugin.wasm --listen 127.0.0.1:7000',
      dev: 'wasmux dev',
    });
    const asconfig = JSON.parse(await readFile(join(dir, 'asconfig.json'), 'utf8'));
    expect(asconfig.entries).toEqual(['assembly/index.ts']);
    expect(asconfig.targets.release.outFile).toBe('build/my-plugin.wasm');
    const index = await readFile(join(dir, 'assembly/index.ts'), 'utf8');
    expect(index).toContain('from "wasmux"');
    expect(index).toContain('export * from "wasmux/entry"');
  });

  it('the http template, into an existing empty directory; --wasmux with a local path is written as file:', async () => {
    const parent = await scratch();
    await mkdir(join(parent, 'web'));
    await writeFile(join(parent, 'wasmux-0.1.0.tgz'), '');
    const r = await wasmux(['new', 'web', '--template', 'http', '--wasmux', './wasmux-0.1.0.tgz'], 20_000, { cwd: parent });
    expect(r.code, r.stderr).toBe(0);
    const pkg = JSON.parse(await readFile(join(parent, 'web/package.json'), 'utf8'));
    expect(pkg.devDependencies.wasmux).toBe('file:../wasmux-0.1.0.tgz');
    expect(pkg.scripts.start).toBe('wasmux run build/web.wasm --listen 127.0.0.1:8080');
    expect(await readFile(join(parent, 'web/assembly/index.ts'), 'utf8')).toContain('from "wasmux/http"');
    // A version range is written as given.
    const r2 = await wasmux(['new', 'pinned', '--wasmux', '0.1.0'], 20_000, { cwd: parent });
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(await readFile(join(parent, 'pinned/package.json'), 'utf8')).devDependencies.wasmux).toBe('0.1.0');
  });

  it('refuses a non-empty directory, a bad name, an unknown template, a missing path: status 2, nothing written', async () => {
    const parent = await scratch();
    await mkdir(join(parent, 'taken'));
    await writeFile(join(parent, 'taken/notes.txt'), 'mine');
    const cases: [args: string[], message: string][] = [
      [
        ['new', 'taken'],
        'WASMUX_ERR_BAD_ARGUMENT: taken is not empty (it holds 1 entry, e.g. "notes.txt"); wasmux new writes only into a new or empty directory',
      ],
      [
        ['new', 'My Plugin'],
        'WASMUX_ERR_BAD_ARGUMENT: "My Plugin" is not a valid package name: use lowercase letters, digits, "-", "." and "_", starting with a letter or digit (e.g. "my-plugin"); the directory\'s name is the project\'s',
      ],
      [['new', '_private'], '"_private" is not a valid package name'],
      [['new', 'http'], '"http" is the name of a Node.js core module; npm refuses it as a package name'],
      [['new', 'wasmux'], '"wasmux" cannot name the project: npm does not install a dependency into a package of the same name'],
      [['new', 'fine', '--template', 'grpc'], 'WASMUX_ERR_BAD_ARGUMENT: unknown template "grpc" (templates: line, http)'],
      [['new', 'fine', '--wasmux', './no-such.tgz'], 'WASMUX_ERR_BAD_ARGUMENT: --wasmux ./no-such.tgz: no such file or directory'],
      [['new'], 'WASMUX_ERR_BAD_ARGUMENT: new needs exactly one directory (see wasmux new --help)'],
      [['new', 'a', 'b'], 'new needs exactly one directory'],
      [['new', 'missing-parent/x'], 'missing-parent does not exist'],
    ];
    for (const [args, message] of cases) {
      const r = await wasmux(args, 20_000, { cwd: parent });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(r.stdout).toBe('');
    }
    expect((await readdir(parent)).sort()).toEqual(['taken']);
    expect(await readdir(join(parent, 'taken'))).toEqual(['notes.txt']);
    expect(existsSync(join(parent, 'fine'))).toBe(false);
  });
});
