// Recording across a reload: the new version's instance records into its
// own trace (`<file>.g1`), named with its sha256, and replays; the first
// version's trace is finished, not overwritten.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backendTargets, startServer, stopAll } from '../helpers/backends.js';
import { echoOnce, wasmux } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'wasmux-reload-record-'));
afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

const epoll = backendTargets().find((t) => t.name === 'epoll')!;

describe('--record through a reload', () => {
  it.skipIf(epoll.skipReason !== null)('each version records into its own trace, and each replays', async () => {
    const trace = join(dir, 't.trace');
    const server = await startServer(epoll, 'dist/plugins/echo.wasm', ['--record', trace]);
    expect(await echoOnce(server.port, 'before\n')).toBe('before\n');
    server.child.kill('SIGHUP');
    await server.waitFor(/wasmux: echo reloaded: version 1 /, 'stderr', 15_000);
    await server.waitFor(/reload: version 0 ended/, 'stderr', 10_000);
    expect(await echoOnce(server.port, 'after\n')).toBe('after\n');
    expect((await server.stop('SIGTERM', 10_000)).code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['t.trace', 't.trace.g1']);
    const first = await wasmux(['replay', trace]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/"before\\n"/);
    expect(first.stdout).not.toMatch(/"after\\n"/);
    const second = await wasmux(['replay', `${trace}.g1`]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/"after\\n"/);
    expect(second.stdout).not.toMatch(/"before\\n"/);
  });
});
