// `wasmux build` in a plugin project of its own, outside this repository:
// asconfig.json -> a checked component that `wasmux run` serves; asc's
// diagnostics, refused settings and a missing toolchain end it with status 1
// and no .wasm written.
//
// The projects import the SDK as a user's do (`from "wasmux"`), from a
// node_modules that links this repository and its toolchain; the whole path
// through `npm pack` and a real install is test/new-project.test.ts.
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile, readFile, readdir, symlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, echoOnce, wasmux, startRun } from './helpers/cli.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const ASCONFIG = {
  entries: ['assembly/index.ts'],
  options: { optimizeLevel: 3 },
  targets: {
    release: { outFile: 'build/release.wasm' },
    // Unoptimized: every function of the trap's stack is still there to name.
    debug: { debug: true, optimizeLevel: 0, outFile: 'build/debug.wasm' },
  },
};

/** A plugin project in a fresh temporary directory, its index.ts `source`. */
async function project(source: string, opts: { asconfig?: object; toolchain?: boolean } = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wasmux-plugin-'));
  dirs.push(dir);
  await mkdir(join(dir, 'assembly'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'my-plugin', private: true }));
  await writeFile(join(dir, 'asconfig.json'), JSON.stringify(opts.asconfig ?? ASCONFIG, null, 2));
  await writeFile(join(dir, 'assembly/index.ts'), source);
  // Its devDependencies as npm would place them: wasmux (this repository),
  // assemblyscript and jco (this repository's install of them).
  if (opts.toolchain ?? true) {
    await mkdir(join(dir, 'node_modules/@bytecodealliance'), { recursive: true });
    await symlink(ROOT, join(dir, 'node_modules/wasmux'));
    await symlink(join(ROOT, 'node_modules/assemblyscript'), join(dir, 'node_modules/assemblyscript'));
    await symlink(join(ROOT, 'node_modules/@bytecodealliance/jco'), join(dir, 'node_modules/@bytecodealliance/jco'));
  }
  return dir;
}

/** The echo plugin, as a project of its own would write it. */
const ECHO = async () => (await readFile(join(ROOT, 'assembly/plugins/echo/index.ts'), 'utf8')).replaceAll('"../../sdk', '"wasmux');

async function wasmFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() && /\.wasm/.test(e.name)) out.push(e.name);
  }
  return out;
}

const BUILT = /^built (\S+) \((\d+) bytes, sha256 ([0-9a-f]{64})\)\n$/;

describe('wasmux build', () => {
  it('--help shows the targets and -o', async () => {
    const r = await wasmux(['build', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: wasmux build [--target release|debug] [-o <file>]');
    expect(r.stdout).toMatch(/--target <name>[\s\S]*\[default: release\]/);
    expect(r.stdout).toMatch(/-o <file>/);
    expect((await wasmux(['--help'])).stdout).toMatch(/^ {2}build /m);
    const bad = await wasmux(['build', '--target', 'fast']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/WASMUX_ERR_BAD_ARGUMENT: --target must be release or debug \(got "fast"\)/);
  });

  it('builds a project outside the repository into a plugin wasmux run serves, the same bytes from another directory', async () => {
    const dir = await project(await ECHO());
    const r = await wasmux(['build'], 60_000, { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const m = BUILT.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(m![1]).toBe('build/release.wasm');
    const bytes = await readFile(join(dir, 'build/release.wasm'));
    expect(bytes.length).toBe(Number(m![2]));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(m![3]);

    const run = await startRun([join(dir, 'build/release.wasm'), '--listen', '127.0.0.1:0']);
    try {
      expect(await echoOnce(run.port, 'built outside the repository\n')).toBe('built outside the repository\n');
    } finally {
      await run.stop('SIGTERM');
    }

    // Same sources in another directory, -o: same bytes.
    const again = await project(await ECHO());
    const r2 = await wasmux(['build', '-o', 'out/echo.wasm'], 60_000, { cwd: again });
    expect(r2.code, r2.stderr).toBe(0);
    expect(BUILT.exec(r2.stdout)?.[1]).toBe('out/echo.wasm');
    expect(await readFile(join(again, 'out/echo.wasm'))).toEqual(bytes);
  });

  it('--target debug keeps the names: a trap is logged with the guest functions on its stack', async () => {
    const dir = await project(`import { Context, serve } from "wasmux";
export * from "wasmux/entry";
function inner(n: i32): i32 { if (n > 0) unreachable(); return n; }
function outer(ctx: Context): string | null { inner(ctx.listen.length + 1); return null; }
serve(outer);
`);
    const b = await wasmux(['build', '--target', 'debug'], 60_000, { cwd: dir });
    expect(b.code, b.stderr).toBe(0);
    expect(BUILT.exec(b.stdout)?.[1]).toBe('build/debug.wasm');
    // It traps at every start: a crash loop, wasmux run exits 1.
    const r = await wasmux(['run', join(dir, 'build/debug.wasm'), '--listen', '127.0.0.1:0'], 30_000);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /debug\[0\] error: trapped: unreachable \(in assembly\/index\/inner < assembly\/index\/outer < [^)]*sdk\/entry\/run\)/,
    );
  });

  it("a type error: asc's diagnostic with the file, line and column, status 1, no .wasm written", async () => {
    const dir = await project(`export * from "wasmux/entry";
const port: i32 = "seven";
`);
    const r = await wasmux(['build', '-o', 'out.wasm'], 60_000, { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ERROR TS2322: Type '~lib/string/String' is not assignable to type 'i32'.");
    // asc writes the location as file(line,column); build repeats each error as file:line:column.
    expect(r.stderr).toContain('in assembly/index.ts(2,19)');
    expect(r.stderr).toContain("\nassembly/index.ts:2:19: error TS2322: Type '~lib/string/String' is not assignable to type 'i32'.\n");
    expect(r.stderr).toMatch(/WASMUX_ERR_BUILD: asc failed: 1 compile error/);
    expect(r.stdout).toBe('');
    expect(await wasmFiles(dir)).toEqual([]);
  });

  it('a plugin that does not re-export wasmux/entry is told to, status 1', async () => {
    const dir = await project(`import { Context, serve } from "wasmux";
serve((ctx: Context): string | null => null);
`);
    const r = await wasmux(['build'], 60_000, { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('(the plugin\'s index.ts must `export * from "wasmux/entry"`, which brings the SDK\'s abort)');
    expect(await wasmFiles(dir)).toEqual([]);
  });

  it('refuses an asconfig.json setting that contradicts what the runtime needs, naming the key', async () => {
    const source = await ECHO();
    const cases: [options: object, target: object, message: string][] = [
      [
        { runtime: 'stub' },
        {},
        'asconfig.json: options.runtime is "stub"; wasmux needs "incremental" (long-running plugins allocate per connection)',
      ],
      [
        {},
        { use: ['abort=assembly/index/myAbort'] },
        'asconfig.json: targets.release.use is "abort=assembly/index/myAbort"; wasmux needs "abort=',
      ],
      [{ exportRuntime: true }, {}, 'asconfig.json: options.exportRuntime is true; wasmux needs false'],
    ];
    for (const [options, target, message] of cases) {
      const dir = await project(source, { asconfig: { entries: ['assembly/index.ts'], options, targets: { release: target } } });
      const r = await wasmux(['build'], 60_000, { cwd: dir });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`wasmux: error WASMUX_ERR_BUILD: ${message}`);
      expect(await wasmFiles(dir)).toEqual([]);
    }
  });

  it('without its devDependencies: says exactly which packages to install, status 1', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    const asc = `assemblyscript@${pkg.devDependencies.assemblyscript}`;
    const jco = `@bytecodealliance/jco@${pkg.devDependencies['@bytecodealliance/jco']}`;
    // The versions named are the ones this project tests (its optional peer dependencies).
    expect(pkg.peerDependencies).toEqual({
      assemblyscript: pkg.devDependencies.assemblyscript,
      '@bytecodealliance/jco': pkg.devDependencies['@bytecodealliance/jco'],
    });

    const none = await project(await ECHO(), { toolchain: false });
    // Nothing to find them through but the project's own (absent) node_modules.
    const env = { ...process.env, NODE_PATH: '', HOME: none };
    const r = await wasmux(['build'], 60_000, { cwd: none, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'wasmux: error WASMUX_ERR_TOOLCHAIN: wasmux build needs assemblyscript, @bytecodealliance/jco and wasmux in this project: ' +
        `npm install --save-dev ${asc} ${jco} wasmux@${pkg.version}\n`,
    );
    expect(existsSync(join(none, 'build'))).toBe(false);

    // The toolchain but not the SDK: only wasmux is named.
    const noSdk = await project(await ECHO());
    await rm(join(noSdk, 'node_modules/wasmux'));
    const r2 = await wasmux(['build'], 60_000, { cwd: noSdk, env: { ...env, HOME: noSdk } });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toBe(
      `wasmux: error WASMUX_ERR_TOOLCHAIN: wasmux build needs wasmux in this project: npm install --save-dev wasmux@${pkg.version}\n`,
    );
  });

  it('warns when the installed toolchain is not the version wasmux is tested with, and still builds', async () => {
    const dir = await project(await ECHO());
    // An assemblyscript whose package.json says another version (the compiler itself is the tested one).
    await rm(join(dir, 'node_modules/assemblyscript'));
    const fake = join(dir, 'node_modules/assemblyscript');
    await mkdir(fake);
    for (const part of ['dist', 'std', 'bin', 'tsconfig-base.json'])
      await symlink(join(ROOT, 'node_modules/assemblyscript', part), join(fake, part));
    const real = JSON.parse(await readFile(join(ROOT, 'node_modules/assemblyscript/package.json'), 'utf8'));
    await writeFile(join(fake, 'package.json'), JSON.stringify({ ...real, version: '0.27.0' }));
    const r = await wasmux(['build'], 60_000, { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`wasmux build: warning: assemblyscript 0.27.0 is installed here; wasmux is tested with ${real.version}\n`);
    expect(BUILT.test(r.stdout)).toBe(true);
  });
});
