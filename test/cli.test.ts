// The `wasmux` command as a user runs it: help, inspect, run, signals.
import { describe, it, expect } from 'vitest';
import { createServer, type AddressInfo } from 'node:net';
import { echoOnce, wasmux, startRun } from './helpers/cli.js';

describe('wasmux --help', () => {
  it('lists the commands', async () => {
    const r = await wasmux(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('run <plugin.wasm>');
    expect(r.stdout).toContain('inspect <plugin.wasm>');
  });

  it('run --help shows every option, its default and the backend auto picks', async () => {
    const r = await wasmux(['run', '--help']);
    expect(r.code).toBe(0);
    for (const opt of [
      '--listen',
      '--workers',
      '--backend',
      '--config',
      '--policy',
      '--allow-connect',
      '--proxy-protocol',
      '--proxy-header-timeout',
      '--max-connections',
      '--max-memory',
      '--cpu-budget',
      '--max-send-queue',
      '--idle-timeout',
      '--max-events',
      '--drain-timeout',
      '--manifest',
      '--log-level',
    ])
      expect(r.stdout).toContain(opt);
    expect(r.stdout).toMatch(/--max-memory <MiB>[\s\S]*?\[default: 64\]/);
    expect(r.stdout).toMatch(/--cpu-budget <ms>[\s\S]*?\[default: 200\]/);
    expect(r.stdout).toMatch(/--proxy-protocol [\s\S]*?\[default: off\]/);
    expect(r.stdout).toMatch(/--proxy-header-timeout <ms>[\s\S]*?\[default: 3000\]/);
    expect(r.stdout).toMatch(/default: auto = epoll here/);
  });

  it('inspect --help', async () => {
    const r = await wasmux(['inspect', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--json');
  });

  it('an unknown command or option is a clear error with exit code 2', async () => {
    const a = await wasmux(['serve']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('WASMUX_ERR_BAD_ARGUMENT');
    const b = await wasmux(['run', 'dist/plugins/echo.wasm', '--frobnicate']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/WASMUX_ERR_BAD_ARGUMENT.*frobnicate/);
    const c = await wasmux(['run', 'dist/plugins/echo.wasm', '--listen', 'nowhere']);
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/"nowhere" is not an address/);
  });
});

describe('wasmux inspect', () => {
  it('lists only wasmux imports for the echo plugin', async () => {
    const r = await wasmux(['inspect', 'dist/plugins/echo.wasm', '--json']);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.world).toBe('wasmux:plugin/plugin@0.1.0');
    expect(info.imports.length).toBeGreaterThan(0);
    for (const i of info.imports) expect(i).toMatch(/^wasmux:plugin\/(poll|tcp|log|types)@0\.1\.0$/);
    expect(info.exports).toEqual(['run (func)']);
    expect(info.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(info.runnable).toBe(true);
  });

  it('says why a plugin with a foreign import is not runnable', async () => {
    const r = await wasmux(['inspect', 'dist/test-plugins/foreign-import.wasm']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/runnable no: WASMUX_ERR_FORBIDDEN_IMPORT.*evil:host\/fs@1\.0\.0/);
  });
});

describe('wasmux run', () => {
  it('serves echo on a port chosen by the OS and exits 0 on SIGTERM', async () => {
    const run = await startRun(['dist/plugins/echo.wasm', '--listen', '127.0.0.1:0']);
    expect(run.output().stdout).toMatch(/echo listening on 127\.0\.0\.1:\d+ \(backend epoll, 1 worker, sha256 [0-9a-f]{64}\)/);
    expect(await echoOnce(run.port, 'hello through the CLI\n')).toBe('hello through the CLI\n');
    const end = await run.stop('SIGTERM');
    expect(end.code).toBe(0);
    expect(end.ms).toBeLessThan(3000);
  });

  it('exits 0 on SIGINT with several workers', async () => {
    const run = await startRun(['dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--workers', '2']);
    expect(run.output().stdout).toContain('2 workers');
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => echoOnce(run.port, `message ${i}`)));
    replies.forEach((r, i) => expect(r).toBe(`message ${i}`));
    const end = await run.stop('SIGINT');
    expect(end.code).toBe(0);
  });

  it('refuses a port another program holds, naming the address', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as AddressInfo).port;
    try {
      const r = await wasmux(['run', 'dist/plugins/echo.wasm', '--listen', `127.0.0.1:${port}`]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`WASMUX_ERR_LISTEN: cannot listen on 127.0.0.1:${port}: address-in-use`);
    } finally {
      holder.close();
    }
  });

  it('refuses a backend this OS does not have, clearly', async () => {
    const r = await wasmux(['run', 'dist/plugins/echo.wasm', '--backend', 'iocp']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/WASMUX_ERR_(BAD_ARGUMENT|BACKEND_UNAVAILABLE).*iocp/);
  });
});
