// A reload to a version that traps at start, through the CLI: the file
// `wasmux run` was started with is replaced, then SIGHUP. The old version
// keeps serving (during and after), the CLI logs why (the trap, with its
// code) and keeps running; a later reload to a good version succeeds and
// serves it (echo instead of http: told apart by what it answers).
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backendTargets, startServer, stopAll } from '../helpers/backends.js';
import { echoOnce } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'wasmux-reload-'));
afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

async function httpGet(port: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/`);
  return { status: r.status, body: await r.text() };
}

const targets = backendTargets().filter((t) => t.name === 'epoll' || t.name === 'poll');

describe.each(targets)('a reload to a plugin that traps at start, on $label', (target) => {
  it.skipIf(target.skipReason !== null)('leaves the old version serving; a later good reload succeeds', { timeout: 60_000 }, async () => {
    const plugin = join(dir, `plugin-${target.name}.wasm`);
    copyFileSync('dist/plugins/http.wasm', plugin);
    const server = await startServer(target, plugin, ['--workers', '2']);
    const name = `plugin-${target.name}`;
    expect(await httpGet(server.port)).toEqual({ status: 200, body: 'Hello, wasmux!\n' });

    // Requests all through the failed reload: every one answered by the old version.
    let serving = true;
    const answers: string[] = [];
    const during = (async () => {
      for (let i = 0; serving && i < 10_000; i++) {
        const r = await httpGet(server.port).catch((e: Error) => ({ status: 0, body: String(e.cause ?? e) }));
        answers.push(`${r.status} ${r.body}`);
      }
    })();
    copyFileSync('dist/test-plugins/trap-at-start.wasm', plugin);
    server.child.kill('SIGHUP');
    const failed = await server.waitFor(new RegExp(`wasmux: reload of ${name} failed: (\\S+): (.*)`), 'stderr', 15_000);
    expect(failed[1]).toBe('WASMUX_ERR_RELOAD');
    expect(failed[2]).toMatch(/trapped at start: unreachable/);
    expect(failed[2]).toMatch(/version 0 serves on$/);
    await new Promise((r) => setTimeout(r, 200));
    serving = false;
    await during;
    expect(answers.length).toBeGreaterThan(0);
    expect(new Set(answers)).toEqual(new Set(['200 Hello, wasmux!\n']));
    expect(await httpGet(server.port)).toEqual({ status: 200, body: 'Hello, wasmux!\n' });
    expect(server.child.exitCode).toBe(null);

    // A good version now: echo, on the same port.
    copyFileSync('dist/plugins/echo.wasm', plugin);
    server.child.kill('SIGHUP');
    await server.waitFor(new RegExp(`wasmux: ${name} reloaded: version 1 \\(sha256 [0-9a-f]{64}\\)`), 'stderr', 15_000);
    expect(await echoOnce(server.port, 'not http\n')).toBe('not http\n');

    // SIGUSR2 tells the counters: one reload done, one failed.
    server.child.kill('SIGUSR2');
    await server.waitFor(new RegExp(`${name} reloads: done 1, failed 1; version 1 `), 'stderr', 5_000);
    const end = await server.stop(target.stopSignal, 10_000);
    expect(end.code).toBe(0);
  });
});
