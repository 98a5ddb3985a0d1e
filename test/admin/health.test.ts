/** `wasmux run --admin`: /healthz, /readyz (start, serving, drain), /plugins, and the port freed at the end. */
import { createServer, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serveAdmin } from '../../host/supervisor/admin.js';
import { adminUrl, startRun, type Running } from '../helpers/cli.js';

let run: Running | null = null;
afterEach(async () => {
  await run?.stop('SIGKILL');
  run = null;
});

/** Resolves true if something can listen on 127.0.0.1:port now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('admin /healthz, /readyz, /plugins', () => {
  it('says 503 on /readyz while the plugins are not all there yet, 200 on /healthz', async () => {
    // The CLI starts the endpoint before the first plugin: no server yet of the one expected.
    const admin = await serveAdmin({ host: '127.0.0.1', port: 0, servers: () => [], expected: 1 });
    try {
      const base = `http://127.0.0.1:${admin.port}`;
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toBe('not ready\n');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect(await (await fetch(`${base}/plugins`)).json()).toEqual({ plugins: [] });
    } finally {
      await admin.close();
    }
    expect(await portFree(admin.port)).toBe(true);
  });

  it('serves /plugins and 200 on /readyz while serving, 503 during the drain, and frees its port when the process ends', async () => {
    run = await startRun([
      'dist/plugins/echo.wasm',
      '--listen',
      '127.0.0.1:0',
      '--workers',
      '2',
      '--max-connections',
      '50',
      '--admin',
      '127.0.0.1:0',
      '--drain-timeout',
      '10000',
    ]);
    const base = adminUrl(run);
    const adminPort = Number(new URL(base).port);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('ready\n');

    const body = (await (await fetch(`${base}/plugins`)).json()) as { plugins: Record<string, unknown>[] };
    expect(body.plugins).toHaveLength(1);
    const p = body.plugins[0]!;
    expect(p.name).toBe('echo');
    expect(p.state).toBe('serving');
    expect(p.ready).toBe(true);
    expect(p.generation).toBe(0);
    expect(p.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(run.output().stdout).toContain(`sha256 ${p.sha256}`);
    expect(p.addresses).toEqual([`127.0.0.1:${run.port}`]);
    expect((p.instances as { instance: number; running: boolean }[]).map((i) => [i.instance, i.running])).toEqual([
      [0, true],
      [1, true],
    ]);
    expect((p.policy as Record<string, unknown>).maxConnections).toBe(50);
    expect(p.reloads).toMatchObject({ done: 0, failed: 0, generation: 0 });

    // A connection held open keeps the drain going: /readyz says 503 meanwhile.
    const held = connect(run.port, '127.0.0.1');
    await new Promise<void>((r, j) => held.once('connect', () => r()).once('error', j));
    await expect
      .poll(async () => (await fetch(`${base}/metrics`).then((r) => r.text())).includes('wasmux_connections_open{plugin="echo"'))
      .toBe(true);
    await expect
      .poll(async () => {
        const t = await fetch(`${base}/metrics`).then((r) => r.text());
        return [...t.matchAll(/^wasmux_connections_open\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
      })
      .toBe(1);
    const stopped = run.stop('SIGTERM');
    await expect.poll(() => run!.output().stderr.includes('draining')).toBe(true);
    const during = await fetch(`${base}/readyz`);
    expect(during.status).toBe(503);
    const state = ((await (await fetch(`${base}/plugins`)).json()) as { plugins: { state: string }[] }).plugins[0]!.state;
    expect(state).toBe('draining');
    held.destroy();
    const end = await stopped;
    run = null;
    expect(end.code).toBe(0);
    expect(end.ms).toBeLessThan(5000);
    expect(await portFree(adminPort)).toBe(true);
  });
});
