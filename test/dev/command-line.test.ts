// `wasmux dev`'s command line: --help, what it refuses before building
// (status 2, WASMUX_ERR_BAD_ARGUMENT), a directory that is no project or
// lacks its toolchain (status 1, as wasmux build), and the address served
// when none is given (package.json's "start" script's).
import { describe, it, expect } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wasmux, ROOT } from '../helpers/cli.js';
import { lineProject, startDev, askOnce, LISTENING } from '../helpers/dev.js';
import { servedName, startScriptListen } from '../../dist/host/cli/dev.js';

/** A port free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('wasmux dev: the command line', () => {
  it('--help says what is watched, the options and the default target; wasmux --help lists dev', async () => {
    const r = await wasmux(['dev', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: wasmux dev \[<dir>\] \[--target debug\|release\]/);
    expect(r.stdout).toMatch(/--target <name>[\s\S]*\[default: debug\]/);
    expect(r.stdout).toContain('--listen');
    expect(r.stdout).toContain('--max-memory <MiB>');
    expect(r.stdout).toContain('--drain-timeout <ms>');
    expect(r.stdout).toContain('asconfig.json, package.json');
    expect((await wasmux(['help', 'dev'])).stdout).toBe(r.stdout);
    expect((await wasmux(['--help'])).stdout).toMatch(/^ {2}dev \[<dir>\] +serve a project, rebuilt and reloaded on each change$/m);
  });

  it('refuses a bad command line before building: status 2, WASMUX_ERR_BAD_ARGUMENT or WASMUX_ERR_BAD_POLICY', async () => {
    const cases: [string[], string][] = [
      [['--target', 'fast'], 'WASMUX_ERR_BAD_ARGUMENT: --target must be release or debug (got "fast")'],
      [['a', 'b'], 'WASMUX_ERR_BAD_ARGUMENT: dev takes one project directory (got 2: a b)'],
      [['no-such-dir'], 'WASMUX_ERR_BAD_ARGUMENT: no-such-dir is not a directory'],
      [['--listen', 'nowhere'], 'WASMUX_ERR_BAD_ARGUMENT: "nowhere" is not an address'],
      [['--workers', '0'], 'WASMUX_ERR_BAD_ARGUMENT: --workers must be an integer from 1 to 256 (got 0)'],
      [['--max-memory', 'lots'], 'WASMUX_ERR_BAD_ARGUMENT: --max-memory must be a whole number (got "lots")'],
      [['--max-memory', '0'], 'WASMUX_ERR_BAD_POLICY'],
      [['--backend', 'carrier-pigeon'], 'WASMUX_ERR_BAD_ARGUMENT: unknown backend "carrier-pigeon"'],
      [['--frobnicate'], 'WASMUX_ERR_BAD_ARGUMENT'],
    ];
    for (const [args, message] of cases) {
      const r = await wasmux(['dev', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(`wasmux: error ${message}`);
      expect(r.stdout, args.join(' ')).toBe('');
    }
  });

  it('a directory without asconfig.json, or without the toolchain: the error, status 1', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'wasmux-dev-empty-'));
    try {
      const r = await wasmux(['dev', empty], 20_000);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(`wasmux: error WASMUX_ERR_BUILD: no asconfig.json in ${empty}`);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
    const p = await lineProject();
    try {
      await rm(join(p.dir, 'node_modules'), { recursive: true });
      const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
      const r = await wasmux(['dev'], 20_000, { cwd: p.dir, env: { ...process.env, NODE_PATH: '', HOME: p.dir } });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        'wasmux: error WASMUX_ERR_TOOLCHAIN: wasmux build needs assemblyscript, @bytecodealliance/jco and wasmux in this project: ' +
          `npm install --save-dev assemblyscript@${pkg.peerDependencies.assemblyscript}`,
      );
    } finally {
      await p.remove();
    }
  });

  it('reads the addresses of a "start" script that runs wasmux run, and only of one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wasmux-dev-start-'));
    try {
      const start = async (script: unknown) => {
        await writeFile(join(dir, 'package.json'), JSON.stringify({ scripts: { start: script } }));
        return startScriptListen(dir);
      };
      expect(await start('wasmux run build/a.wasm --listen 127.0.0.1:7000')).toEqual(['127.0.0.1:7000']);
      expect(await start('wasmux run a.wasm --listen=127.0.0.1:1 --workers 2 --listen [::1]:2')).toEqual(['127.0.0.1:1', '[::1]:2']);
      expect(await start('node server.js --listen 127.0.0.1:9')).toEqual([]);
      expect(await start(['wasmux run a.wasm --listen 127.0.0.1:9'])).toEqual([]);
      await writeFile(join(dir, 'package.json'), '{ not json');
      expect(startScriptListen(dir)).toEqual([]);
      await rm(join(dir, 'package.json'));
      expect(startScriptListen(dir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("names the plugin as wasmux run names the release build: asconfig.json's release outFile, else the built file", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wasmux-dev-name-'));
    try {
      const named = async (asconfig: unknown) => {
        await writeFile(join(dir, 'asconfig.json'), typeof asconfig === 'string' ? asconfig : JSON.stringify(asconfig));
        return servedName(dir, join(dir, 'build/x-debug.wasm'));
      };
      expect(await named({ targets: { release: { outFile: 'build/shop.wasm' }, debug: { outFile: 'build/shop-debug.wasm' } } })).toBe(
        'shop',
      );
      expect(await named({ options: { outFile: 'out/cart.wasm' }, targets: { debug: {} } })).toBe('cart');
      expect(await named({ targets: { debug: { outFile: 'build/x-debug.wasm' } } })).toBe('x-debug');
      expect(await named({ targets: { release: { outFile: 'build/' } } })).toBe('x-debug');
      expect(await named('{ not json')).toBe('x-debug');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('without --listen: serves where package.json\'s "start" script does, with the debug target', async () => {
    const p = await lineProject();
    const port = await freePort();
    const pkgFile = join(p.dir, 'package.json');
    const pkg = JSON.parse(await readFile(pkgFile, 'utf8'));
    pkg.scripts.start = `wasmux run build/devplug.wasm --listen 127.0.0.1:${port} --workers 1`;
    await writeFile(pkgFile, JSON.stringify(pkg));
    // The project named on the command line, from another directory.
    const dev = startDev([p.dir], tmpdir());
    try {
      const m = await dev.waitFor(LISTENING);
      expect(Number(m[1])).toBe(port);
      expect(dev.output()).toMatch(/^wasmux dev: watching \., assembly\/ in \S+devplug \(target debug\)\n/);
      // The debug target's file (asconfig.json's targets.debug.outFile) is the one served.
      expect(dev.output()).toMatch(/wasmux: devplug listening on/);
      expect(await askOnce(port, 'PING')).toBe('PONG');
      expect((await dev.stop('SIGTERM')).code).toBe(0);
    } finally {
      await dev.stop('SIGKILL');
      await p.remove();
    }
  });
});
