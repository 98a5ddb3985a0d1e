// `wasmux dev --admin`: wasmux run's admin endpoint for the version served
// now. /readyz is 200 once the first build serves, /plugins names the sha256
// served (the new one after a reload), /metrics has the host's counters and
// the plugin's own metrics — added here by an edit, the way a plugin author
// develops them. A bad address is refused before the first build; the port
// is free once dev has ended.
import { describe, it, expect } from 'vitest';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { wasmux } from '../helpers/cli.js';
import { LISTENING, lineClient, lineProject, startDev } from '../helpers/dev.js';

const ADMIN = /wasmux: admin endpoint on http:\/\/127\.0\.0\.1:(\d+)\n/;
const RELOADED = /wasmux dev: reloaded devplug: sha256 [0-9a-f]{64} -> ([0-9a-f]{64})/;

async function get(base: string, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: r.status, body: await r.text() };
}

/** Whether something listens on the port: bound again by this process, or not. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('wasmux dev --admin', () => {
  it('serves /readyz, /plugins and /metrics for the version served, the plugin metrics an edit adds included', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], p.dir);
    let adminPort = 0;
    try {
      adminPort = Number((await dev.waitFor(ADMIN))[1]);
      const base = `http://127.0.0.1:${adminPort}`;
      const first = await dev.waitFor(LISTENING);
      expect(await get(base, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
      expect((await get(base, '/readyz')).status).toBe(200);
      const { plugins } = JSON.parse((await get(base, '/plugins')).body);
      expect(plugins).toHaveLength(1);
      expect(plugins[0]).toMatchObject({ name: 'devplug', state: 'serving', ready: true, sha256: first[2] });

      // An edit that counts commands with the SDK's Counter (one atomic save).
      const source = await readFile(p.index, 'utf8');
      const edited = source
        .replace(
          'import { Connection, Context, Handler, Server, TcpStream, serve } from "wasmux";',
          'import { Connection, Context, Counter, CounterSeries, Handler, Server, TcpStream, serve } from "wasmux";\n' +
            'let commandsTotal: CounterSeries | null = null;',
        )
        .replace('    c.commands++;\n', '    c.commands++;\n    commandsTotal!.inc();\n')
        .replace(
          '  const server = new Server<LineConnection>(new LineProtocol());',
          '  commandsTotal = new Counter("commands_total", "Commands answered").only;\n' +
            '  const server = new Server<LineConnection>(new LineProtocol());',
        );
      expect(edited).toContain('commandsTotal!.inc()');
      expect(edited).toContain('new Counter("commands_total"');
      const from = dev.output().length;
      await writeFile(`${p.index}.tmp~`, edited);
      await rename(`${p.index}.tmp~`, p.index);
      const reloaded = await dev.waitFor(RELOADED, 30_000, from);

      const c = await lineClient(Number(first[1]));
      expect(await c.ask('PING')).toBe('PONG');
      expect(await c.ask('COUNT')).toBe('2');
      c.close();
      expect(JSON.parse((await get(base, '/plugins')).body).plugins[0]).toMatchObject({ sha256: reloaded[1], generation: 1 });
      // Reported before the plugin's next wait: the scrape after the answers sees both.
      let metrics = '';
      for (const deadline = Date.now() + 5_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
        metrics = (await get(base, '/metrics')).body;
        if (/devplug_commands_total\{[^}]*\} 2\n/.test(metrics)) break;
      }
      expect(metrics).toContain('# HELP devplug_commands_total Commands answered');
      expect(metrics).toMatch(/^devplug_commands_total\{plugin="devplug",instance="0"\} 2$/m);
      expect(metrics).toMatch(/^wasmux_connections_accepted_total\{plugin="devplug",instance="0"\} \d+$/m);
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
    // Closed with dev: the port can be bound again.
    expect(await portFree(adminPort)).toBe(true);
  }, 60_000);

  it('/readyz is 503 while nothing is served: a first build that fails', async () => {
    const p = await lineProject();
    await writeFile(p.index, 'this is not AssemblyScript\n');
    const dev = startDev(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'], p.dir);
    try {
      const base = `http://127.0.0.1:${(await dev.waitFor(ADMIN))[1]}`;
      await dev.waitFor(/wasmux dev: build failed after [\d.]+ s; nothing served yet; waiting for a change\n/, 30_000);
      expect((await get(base, '/readyz')).status).toBe(503);
      expect((await get(base, '/healthz')).status).toBe(200);
      expect(JSON.parse((await get(base, '/plugins')).body)).toEqual({ plugins: [] });
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  }, 60_000);

  it('a bad --admin is refused before building: status 2, WASMUX_ERR_BAD_ARGUMENT', async () => {
    const r = await wasmux(['dev', '--admin', 'nowhere']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('wasmux: error WASMUX_ERR_BAD_ARGUMENT: --admin must be host:port');
    expect(r.stdout).toBe('');
  });
});
