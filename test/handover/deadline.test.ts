// Bounded in time: a new version that opts in (one handover.adopt) and then
// never adopts gets the old version's connections, which wait for it until
// the host's adopt deadline (5 s) closes them: counted as failed, logged,
// no descriptor left. And with --record (the API's `record`), handover is
// off: the connections drain as before, and the reload says so.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serve, type LogEntry, type PluginServer } from '../../dist/host/index.js';
import { openFds } from '../helpers/server.js';
import { WS_WASM, WebSocket } from '../helpers/ws.js';

const servers: PluginServer[] = [];
const sockets: WebSocket[] = [];
const dir = mkdtempSync(join(tmpdir(), 'wasmux-handover-'));
afterAll(async () => {
  for (const s of sockets) s.terminate();
  await Promise.all(servers.map((s) => s.stop()));
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until(what: () => string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await sleep(20);
  }
}

async function members(url: string, n: number) {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      sockets.push(ws);
      const m = { ws, closedAt: 0 };
      ws.on('close', () => (m.closedAt = performance.now()));
      ws.on('error', () => {});
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      return m;
    }),
  );
}

describe.each(['epoll', 'poll'] as const)('handover bounds, on %s', (backend) => {
  it('connections not adopted within 5 s are closed and counted as failed', { timeout: 30_000 }, async () => {
    const fds0 = openFds();
    const logs: LogEntry[] = [];
    const server = await serve({ plugin: WS_WASM, listen: ['127.0.0.1:0'], workers: 1, backend, logger: (e) => void logs.push(e) });
    servers.push(server);
    await server.ready;
    const ms = await members(`ws://127.0.0.1:${server.addresses[0]!.port}/`, 3);
    const t0 = performance.now();
    const r = await server.reload({ plugin: 'dist/test-plugins/adopts-never.wasm', config: '', drainTimeoutMs: 10_000 });
    await until(
      () => 'the three closed',
      () => ms.every((m) => m.closedAt > 0),
      15_000,
    );
    for (const m of ms) expect(m.closedAt - t0).toBeGreaterThan(4500);
    await r.drained;
    expect(server.reloadStats()).toMatchObject({ handoversDone: 0, handoversFailed: 3 });
    expect(
      logs.filter((e) => /handover: a connection from version 0 was not adopted within 5000 ms; closed/.test(e.message)).length,
    ).toBeGreaterThan(0);
    expect(
      logs.some((e) =>
        /reload: version 0 ended; 0 of its 3 connection\(s\) finished, 0 moved to version 1 \(3 handover\(s\) failed\)/.test(e.message),
      ),
    ).toBe(true);
    for (const m of ms) m.ws.terminate();
    await server.stop();
    await until(
      () => `descriptors back to ${fds0} (${openFds()})`,
      () => openFds() === fds0,
      5000,
    );
  });

  it('with a recording, no handover: the connections drain, and the reload says so', { timeout: 30_000 }, async () => {
    const logs: LogEntry[] = [];
    const server = await serve({
      plugin: WS_WASM,
      listen: ['127.0.0.1:0'],
      workers: 1,
      backend,
      record: { file: join(dir, `${backend}.trace`) },
      logger: (e) => void logs.push(e),
    });
    servers.push(server);
    await server.ready;
    const ms = await members(`ws://127.0.0.1:${server.addresses[0]!.port}/`, 2);
    const r = await server.reload({ config: 'version=v1' });
    await r.drained;
    // Idle members: closed by the draining version (their clients read the close frame a moment after).
    await expect.poll(() => ms.every((m) => m.closedAt > 0), { timeout: 5_000 }).toBe(true);
    expect(server.reloadStats()).toMatchObject({ handoversDone: 0, handoversFailed: 0 });
    expect(logs.some((e) => /reload: no live handover while recording \(--record\): version 0's connections drain/.test(e.message))).toBe(
      true,
    );
  });
});
