// A plugin of one's own, the way a new user gets there: `npm pack` this
// project, install the tarball as a tool, `wasmux new hello` in an empty
// directory outside the checkout, `npm install` (the tarball and the
// template's devDependencies, from the npm registry or npm's cache),
// `npm run build`, `npm test`, then `wasmux run` the built plugin on port 0
// and a real client (nc for the line template, curl for the HTTP one) gets
// the right answer; `wasmux dev` reloads an edit of the line template.
// Nothing but npm's registry is used.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startRun } from './helpers/cli.js';
import { LISTENING, askOnce, editFile, startDev } from './helpers/dev.js';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`). */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number, input?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input ?? '');
  });
}

const has = (cmd: string) => !spawnSync(cmd, ['-h'], { stdio: 'ignore' }).error;
// npm install in a new project takes seconds from npm's cache (CI's own install filled it), longer from the registry.
const INSTALL_MS = 240_000;
const NPM = ['--no-audit', '--no-fund', '--prefer-offline'];

let work: string;
let tarball: string;
let tool: string; // the installed wasmux command's main.js

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'wasmux-new-'));
  // dist/ is built (npm test builds first): pack as it is.
  const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], ROOT, 60_000);
  expect(pack.code, pack.stderr).toBe(0);
  tarball = join(work, pack.stdout.trim().split('\n').pop()!);
  expect(existsSync(tarball)).toBe(true);
  // The tarball installed as a tool, as `npm install -g` would (into a prefix of the test's own).
  const install = await run('npm', ['install', '--prefix', join(work, 'tools'), ...NPM, tarball], work, INSTALL_MS);
  expect(install.code, install.stderr).toBe(0);
  tool = join(work, 'tools/node_modules/wasmux/dist/host/cli/main.js');
}, INSTALL_MS + 60_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** `wasmux new <name> --template <t>` in an empty directory, install, build, test. Returns the project. */
async function newProjectTested(template: string, name: string): Promise<string> {
  const parent = join(work, template);
  await mkdir(parent);
  const created = await run(process.execPath, [tool, 'new', name, '--template', template, '--wasmux', tarball], parent, 20_000);
  expect(created.code, created.stderr).toBe(0);
  expect(created.stdout).toContain(`created ${name} (template ${template})`);
  const dir = join(parent, name);
  expect((await readdir(dir)).sort()).toEqual(['.gitignore', 'README.md', 'asconfig.json', 'assembly', 'package.json', 'test']);
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8'));
  expect(Object.keys(pkg.devDependencies).sort()).toEqual(['@bytecodealliance/jco', 'assemblyscript', 'wasmux']);
  expect(Object.keys(pkg.scripts)).toEqual(expect.arrayContaining(['build', 'test', 'start']));

  const install = await run('npm', ['install', ...NPM], dir, INSTALL_MS);
  expect(install.code, install.stderr).toBe(0);

  const build = await run('npm', ['run', 'build'], dir, 120_000);
  expect(build.code, build.stderr).toBe(0);
  expect(build.stdout).toMatch(new RegExp(`built build/${name}\\.wasm \\(\\d+ bytes, sha256 [0-9a-f]{64}\\)`));

  const test = await run('npm', ['test'], dir, 180_000);
  expect(test.code, `${test.stdout}\n${test.stderr}`).toBe(0);
  // node --test's summary: every test of the template ran, and passed.
  const pass = Number(/^# pass (\d+)$/m.exec(test.stdout)?.[1]);
  expect(pass).toBeGreaterThanOrEqual(5);
  expect(test.stdout).toMatch(/^# fail 0$/m);
  return dir;
}

/** `wasmux run` from the project's own install, as `npm start` does, on port 0. */
function startProject(dir: string, name: string) {
  return startRun([`build/${name}.wasm`, '--listen', '127.0.0.1:0'], 20_000, {
    cli: join(dir, 'node_modules/wasmux/dist/host/cli/main.js'),
    cwd: dir,
  });
}

describe('a plugin project from wasmux new, outside the repository', () => {
  it.skipIf(!has('nc'))(
    `line template: new, install, build, test, run; nc gets the answers${has('nc') ? '' : ' (skipped: nc is not installed)'}`,
    async () => {
      const dir = await newProjectTested('line', 'hello');
      const server = await startProject(dir, 'hello');
      try {
        // -q 1: after stdin ends, wait for the server's replies (it closes after BYE).
        const nc = await run(
          'nc',
          ['-q', '1', '-w', '5', '127.0.0.1', String(server.port)],
          dir,
          10_000,
          'PING\nECHO hello from nc\nQUIT\n',
        );
        expect(nc.stdout).toBe('PONG\nhello from nc\nBYE\n');
      } finally {
        const end = await server.stop('SIGTERM');
        expect(end.code, end.stderr).toBe(0);
      }

      // `wasmux dev` from the project's own install: served, an edit reloaded in place.
      const dev = startDev(['--listen', '127.0.0.1:0'], dir, join(dir, 'node_modules/wasmux/dist/host/cli/main.js'));
      try {
        const port = Number((await dev.waitFor(LISTENING, 30_000))[1]);
        expect(await askOnce(port, 'PING')).toBe('PONG');
        await editFile(join(dir, 'assembly/index.ts'), 'c.write("PONG\\n");', 'c.write("PONG from dev\\n");');
        await dev.waitFor(/wasmux dev: reloaded hello: sha256 [0-9a-f]{64} -> [0-9a-f]{64} /, 30_000);
        expect(await askOnce(port, 'PING')).toBe('PONG from dev');
      } finally {
        const end = await dev.stop('SIGTERM');
        expect(end.code, dev.output()).toBe(0);
      }
    },
    600_000,
  );

  it.skipIf(!has('curl'))(
    `http template: new, install, build, test, run; curl gets the answers${has('curl') ? '' : ' (skipped: curl is not installed)'}`,
    async () => {
      const dir = await newProjectTested('http', 'web');
      const server = await startProject(dir, 'web');
      try {
        const base = `http://127.0.0.1:${server.port}`;
        const root = await run('curl', ['-s', '-i', `${base}/`], dir, 10_000);
        expect(root.stdout).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
        expect(root.stdout).toMatch(/\r\n\r\nHello from web!\n$/);
        const echo = await run('curl', ['-s', '--data-binary', 'posted by curl', `${base}/echo`], dir, 10_000);
        expect(echo.stdout).toBe('posted by curl');
        const missing = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${base}/missing`], dir, 10_000);
        expect(missing.stdout).toBe('404');
      } finally {
        const end = await server.stop('SIGTERM');
        expect(end.code, end.stderr).toBe(0);
      }
    },
    600_000,
  );
});
