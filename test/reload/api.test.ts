// server.reload() through the programmatic API: a bad new version rejects
// with its code and leaves the old one serving; reloads run one at a time;
// a reload of a stopped server is refused; a new config reaches the guest.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serve, loadPlugin, type LogEntry, type PluginServer } from '../../dist/host/index.js';
import { echoOnce } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'wasmux-reload-api-'));
const servers: PluginServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function echoServer(logs: LogEntry[] = []): Promise<PluginServer> {
  const server = await serve({
    plugin: 'dist/plugins/echo.wasm',
    listen: ['127.0.0.1:0'],
    workers: 2,
    logger: (e) => void logs.push(e),
  });
  servers.push(server);
  await server.ready;
  return server;
}

describe('server.reload()', () => {
  it('rejects a file that is not wasm with its loader code; the old version serves on', async () => {
    const server = await echoServer();
    const port = server.addresses[0]!.port;
    const bad = join(dir, 'not.wasm');
    writeFileSync(bad, 'hello, not a component\n');
    await expect(server.reload({ plugin: bad })).rejects.toMatchObject({ code: 'WASMUX_ERR_NOT_WASM' });
    await expect(server.reload({ plugin: join(dir, 'missing.wasm') })).rejects.toMatchObject({ code: 'WASMUX_ERR_IO' });
    expect(await echoOnce(port, 'still here\n')).toBe('still here\n');
    expect(server.generation).toBe(0);
    expect(server.reloadStats()).toMatchObject({ generation: 0, done: 0, failed: 2, listenersHandedOver: 0, drained: [] });
  });

  it('rejects a version that traps at start with WASMUX_ERR_RELOAD and the trap; then a good reload serves', async () => {
    const logs: LogEntry[] = [];
    const server = await echoServer(logs);
    const port = server.addresses[0]!.port;
    const sha0 = server.sha256;
    const e = await server.reload({ plugin: 'dist/test-plugins/trap-at-start.wasm' }).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'WasmuxError', code: 'WASMUX_ERR_RELOAD' });
    expect((e as Error).message).toMatch(/version 1 \(sha256 [0-9a-f]{64}\) instance \d trapped at start: unreachable/);
    expect(logs.some((l) => l.level === 'error' && /reload failed \(WASMUX_ERR_RELOAD\).*version 0 serves on/.test(l.message))).toBe(true);
    expect(await echoOnce(port, 'old\n')).toBe('old\n');
    expect(server.sha256).toBe(sha0);
    expect(server.stats().every((s) => s.running)).toBe(true);

    const http = await loadPlugin('dist/plugins/http.wasm');
    const r = await server.reload({ plugin: http });
    expect(r).toMatchObject({ generation: 1, sha256: http.info.sha256 });
    expect(server.sha256).toBe(http.info.sha256);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(await res.text()).toBe('Hello, wasmux!\n');
    expect(await r.drained).toEqual({ connections: 0 });
    expect(server.reloadStats()).toMatchObject({
      generation: 1,
      done: 1,
      failed: 1,
      drained: [{ generation: 0, sha256: sha0, connections: 0, cut: 0 }],
    });
  });

  it('runs concurrent reloads one after the other', async () => {
    const server = await echoServer();
    const port = server.addresses[0]!.port;
    const [a, b, c] = await Promise.all([server.reload(), server.reload(), server.reload()]);
    expect([a.generation, b.generation, c.generation]).toEqual([1, 2, 3]);
    await Promise.all([a.drained, b.drained, c.drained]);
    expect(await echoOnce(port, 'after three\n')).toBe('after three\n');
    expect(server.stats().map((s) => s.running)).toEqual([true, true]);
  });

  it('refuses a new listen address, and a reload of a stopped server', async () => {
    const server = await echoServer();
    await expect(server.reload({ policy: { listen: ['127.0.0.1:1'] } })).rejects.toMatchObject({
      code: 'WASMUX_ERR_RELOAD',
      message: expect.stringMatching(/cannot add a listen address \(127\.0\.0\.1:1\)/),
    });
    await server.stop();
    await expect(server.reload()).rejects.toMatchObject({
      code: 'WASMUX_ERR_RELOAD',
      message: expect.stringMatching(/draining, stopping or stopped/),
    });
  });

  it('a stop during a reload refuses the reload and stops every instance of both versions', async () => {
    const server = await echoServer();
    for (const wait of [0, 10]) {
      const s = wait === 0 ? server : await echoServer();
      const reload = s.reload();
      await new Promise((r) => setTimeout(r, wait)); // while the new version loads, and while it starts
      const stopped = s.stop();
      await expect(reload).rejects.toMatchObject({ code: 'WASMUX_ERR_RELOAD', message: expect.stringMatching(/stop/) });
      await stopped;
      expect(s.stats().every((st) => !st.running)).toBe(true);
    }
  });

  it('a server started from a loaded plugin must be given the new one', async () => {
    const server = await serve({ plugin: await loadPlugin('dist/plugins/echo.wasm'), listen: ['127.0.0.1:0'], logger: () => {} });
    servers.push(server);
    await server.ready;
    await expect(server.reload()).rejects.toMatchObject({
      code: 'WASMUX_ERR_RELOAD',
      message: expect.stringMatching(/give reload\(\) one/),
    });
  });
});
