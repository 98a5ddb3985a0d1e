/**
 * The admin endpoint over the programmatic API (serve() + serveAdmin()): a
 * plugin the watchdog kills at every start until the supervisor gives up
 * (/readyz never says 200, /plugins says failed, the metrics count the
 * kills), and a drain (200, then 503; serving, draining, stopped).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type AdminServer, type PluginServer, serve, serveAdmin } from '../../dist/host/index.js';
import { ECHO_WASM, testPlugin } from '../helpers/hostile.js';

let server: PluginServer | null = null;
let admin: AdminServer | null = null;
afterEach(async () => {
  await admin?.close();
  await server?.stop();
  admin = null;
  server = null;
});

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('admin over the API, a crash loop', () => {
  it('says 503 on /readyz from start to the end, "failed" on /plugins, and counts the watchdog kills', async () => {
    server = await serve({ plugin: testPlugin('loop-at-start'), listen: ['127.0.0.1:0'], policy: { cpuBudgetMs: 50 }, logger: () => {} });
    admin = await serveAdmin({ host: '127.0.0.1', port: 0, servers: () => [server!], expected: 1 });
    const base = `http://127.0.0.1:${admin.port}`;
    const failed = server.ready.then(
      () => null,
      (e: Error & { code?: string }) => e.code,
    );
    const readyCodes = new Set<number>();
    let done = false;
    void failed.then(() => (done = true));
    while (!done) {
      readyCodes.add((await fetch(`${base}/readyz`)).status);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await failed).toBe('WASMUX_ERR_CRASH_LOOP');
    expect([...readyCodes]).toEqual([503]);
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    const plugins = (await (await fetch(`${base}/plugins`)).json()) as { plugins: { state: string; ready: boolean }[] };
    expect(plugins.plugins[0]).toMatchObject({ state: 'failed', ready: false });

    const metrics = await (await fetch(`${base}/metrics`)).text();
    const l = 'plugin="loop-at-start",instance="0"';
    expect(sample(metrics, 'wasmux_watchdog_kills_total', l)).toBe(5);
    expect(sample(metrics, 'wasmux_instance_ends_total', `${l},cause="killed"`)).toBe(5);
    expect(sample(metrics, 'wasmux_restarts_total', l)).toBe(4);
    expect(sample(metrics, 'wasmux_instance_up', l)).toBe(0);
    expect(sample(metrics, 'wasmux_plugin_ready', 'plugin="loop-at-start"')).toBe(0);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

describe('admin over the API, a drain', () => {
  it('says 200 on /readyz while serving, 503 once drain() begins and after; state serving, draining, stopped', async () => {
    server = await serve({ plugin: ECHO_WASM, listen: ['127.0.0.1:0'], workers: 2, logger: () => {} });
    admin = await serveAdmin({ host: '127.0.0.1', port: 0, servers: () => [server!], expected: 1 });
    const base = `http://127.0.0.1:${admin.port}`;
    const state = async () => ((await (await fetch(`${base}/plugins`)).json()) as { plugins: { state: string }[] }).plugins[0]!.state;
    await server.ready;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect(await state()).toBe('serving');
    const drained = server.drain(2000);
    expect(server.state).toBe('draining');
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    await drained;
    await server.finished();
    expect(await state()).toBe('stopped');
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
    const port = admin.port;
    await admin.close();
    admin = null;
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });
});
