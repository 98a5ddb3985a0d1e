// Live handover with two workers: each instance has its own chat room (the
// kernel spreads connections over the SO_REUSEPORT group), and a reload moves
// every member of an instance's room to the new version's instance of the
// same index. 40 clients: none sees a close, each instance holds as many
// connections after the reload as before, and each client's message reaches
// exactly the members it reached before the reload (its room, less itself).
import { afterAll, describe, expect, it } from 'vitest';
import { serve, type PluginServer } from '../../dist/host/index.js';
import { WS_WASM, WebSocket } from '../helpers/ws.js';

const CLIENTS = 40;

const servers: PluginServer[] = [];
const sockets: WebSocket[] = [];
afterAll(async () => {
  for (const w of sockets) w.terminate();
  await Promise.all(servers.map((s) => s.stop()));
});

interface Client {
  ws: WebSocket;
  /** Messages received: text → count. */
  got: Map<string, number>;
  closed: string | null;
}

async function open(url: string): Promise<Client> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  sockets.push(ws);
  const c: Client = { ws, got: new Map(), closed: null };
  ws.on('message', (d: Buffer) => c.got.set(d.toString(), (c.got.get(d.toString()) ?? 0) + 1));
  ws.on('close', (code: number) => (c.closed ??= `close ${code}`));
  ws.on('error', (e: Error) => (c.closed ??= `error ${e.message}`));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return c;
}

async function until(what: () => string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every client sends `<tag><i>`; once all are delivered (`expected` deliveries), who got each one. */
async function rooms(clients: Client[], tag: string, expected: number): Promise<string[]> {
  clients.forEach((c, i) => c.ws.send(`${tag}${i}`));
  const delivered = () => clients.reduce((n, c) => n + [...c.got.keys()].filter((k) => k.startsWith(tag)).length, 0);
  await until(
    () => `${delivered()} of ${expected} ${tag} deliveries`,
    () => delivered() >= expected,
    20_000,
  );
  await new Promise((r) => setTimeout(r, 100)); // nothing more comes
  expect(delivered()).toBe(expected);
  for (const c of clients) for (const [k, n] of c.got) expect(n, `${k} received ${n} times`).toBe(1);
  return clients.map((_, i) =>
    clients
      .map((c, j) => (c.got.has(`${tag}${i}`) ? j : -1))
      .filter((j) => j >= 0)
      .join(','),
  );
}

// Linux spreads a SO_REUSEPORT group's connections by a hash; the BSDs give
// them all to the listener bound last, and IOCP's instances share one socket.
describe.skipIf(process.platform !== 'linux')(
  `live handover of the ws rooms with two workers${process.platform === 'linux' ? '' : " (skipped: two rooms need Linux's SO_REUSEPORT spreading)"}`,
  () => {
    it(`${CLIENTS} clients: every member moves to the new instance of its index, the rooms are the same after`, async () => {
      const server = await serve({ plugin: WS_WASM, listen: ['127.0.0.1:0'], workers: 2, config: 'version=v0', logger: () => {} });
      servers.push(server);
      await server.ready;
      const url = `ws://127.0.0.1:${server.addresses[0]!.port}/`;
      const clients = await Promise.all(Array.from({ length: CLIENTS }, () => open(url)));
      await until(
        () => `open ${server.stats().map((s) => s.open)}`,
        () => server.stats()[0]!.open + server.stats()[1]!.open === CLIENTS,
        5_000,
      );
      const sizes = server.stats().map((s) => s.open);
      // The kernel's hash spread them (both empty-handed: 2 in 2^40).
      expect(sizes.every((n) => n > 0)).toBe(true);
      const perMessage = sizes.reduce((n, k) => n + k * (k - 1), 0);
      const before = await rooms(clients, 'pre', perMessage);

      const r = await server.reload({ config: 'version=v1' });
      const { connections } = await r.drained;
      expect(connections).toBe(CLIENTS);
      expect(server.reloadStats()).toMatchObject({ generation: 1, handoversDone: CLIENTS, handoversFailed: 0 });
      expect(server.stats().map((s) => s.open)).toEqual(sizes);

      const after = await rooms(clients, 'post', perMessage);
      expect(after).toEqual(before);
      expect(clients.filter((c) => c.closed !== null).map((c) => c.closed)).toEqual([]);
    }, 60_000);
  },
);
