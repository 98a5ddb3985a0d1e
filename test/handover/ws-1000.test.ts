// Live handover of the ws chat room (wit/handover.wit): 1,000 WebSocket
// clients stay connected across 5 reloads, each to a version that logs a
// different version string; no client sees a close, and every message sent
// before, during and after the reloads reaches every other client. On
// epoll and poll(2), through the API (clients and server in this process:
// about 2,000 descriptors, far below the 20,000 limit).
//
// Each phase has its own senders (100 clients, each sending one message):
// phase 2k while reload k runs (half as it starts, half as it resolves:
// the old version gives its members at that moment), phase 2k+1 after the
// old version has ended. 1,000 messages in all, each due at 999 clients.
import { afterAll, describe, expect, it } from 'vitest';
import { serve, type LogEntry, type PluginServer } from '../../dist/host/index.js';
import { WS_WASM, WebSocket } from '../helpers/ws.js';

const CLIENTS = Number(process.env.WASMUX_HANDOVER_CLIENTS ?? 1000);
const RELOADS = 5;
const PHASES = 2 * RELOADS;
const PER_PHASE = Math.floor(CLIENTS / PHASES);

const servers: PluginServer[] = [];
const sockets: WebSocket[] = [];
afterAll(async () => {
  for (const w of sockets) w.terminate();
  await Promise.all(servers.map((s) => s.stop()));
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: () => string, ok: () => boolean, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await sleep(20);
  }
}

interface Client {
  ws: WebSocket;
  got: Set<string>;
  closed: string | null;
}

async function open(url: string): Promise<Client> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  sockets.push(ws);
  const c: Client = { ws, got: new Set(), closed: null };
  ws.on('message', (d: Buffer) => c.got.add(d.toString()));
  ws.on('close', (code: number) => (c.closed ??= `close ${code}`));
  ws.on('error', (e: Error) => (c.closed ??= `error ${e.message}`));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return c;
}

describe.each(['epoll', 'poll'] as const)('live handover of the ws room on %s', (backend) => {
  it(`${CLIENTS} clients across ${RELOADS} reloads: none disconnected, every message delivered`, { timeout: 240_000 }, async () => {
    const logs: LogEntry[] = [];
    const server = await serve({
      plugin: WS_WASM,
      listen: ['127.0.0.1:0'],
      workers: 1,
      backend,
      config: 'version=v0',
      logger: (e) => void logs.push(e),
    });
    servers.push(server);
    await server.ready;
    const url = `ws://127.0.0.1:${server.addresses[0]!.port}/`;

    const clients: Client[] = [];
    for (let i = 0; i < CLIENTS; i += 100) {
      clients.push(...(await Promise.all(Array.from({ length: Math.min(100, CLIENTS - i) }, () => open(url)))));
    }
    expect(server.stats()[0]!.open).toBe(CLIENTS);

    const sent: { from: number; text: string }[] = [];
    const send = (phase: number, from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const sender = phase * PER_PHASE + i;
        const text = `p${phase}:c${sender}`;
        clients[sender]!.ws.send(text);
        sent.push({ from: sender, text });
      }
    };

    const t0 = performance.now();
    for (let k = 1; k <= RELOADS; k++) {
      const phase = 2 * (k - 1);
      const reload = server.reload({ config: `version=v${k}` });
      send(phase, 0, PER_PHASE / 2); // while the new version starts
      const r = await reload;
      send(phase, PER_PHASE / 2, PER_PHASE); // as the old one gives its members away
      const { connections } = await r.drained;
      expect(connections).toBe(CLIENTS);
      send(phase + 1, 0, PER_PHASE); // after: all in the new version
    }
    const reloadsMs = Math.round(performance.now() - t0);

    // Every message at every client but its sender.
    const missing = () => {
      let n = 0;
      for (const m of sent) for (let i = 0; i < CLIENTS; i++) if (i !== m.from && !clients[i]!.got.has(m.text)) n++;
      return n;
    };
    const detail = () => {
      const out: string[] = [];
      for (const m of sent) {
        const lacking = clients.map((c, i) => (i !== m.from && !c.got.has(m.text) ? i : -1)).filter((i) => i >= 0);
        if (lacking.length > 0) out.push(`${m.text} missing at ${lacking.length} client(s)`);
      }
      return out.slice(0, 10).join('; ');
    };
    await until(
      () => `every message delivered (${missing()} missing): ${detail()}`,
      () => missing() === 0,
      60_000,
    );
    expect(clients.filter((c) => c.closed !== null).map((c) => c.closed)).toEqual([]);
    expect(clients.every((c) => c.ws.readyState === WebSocket.OPEN)).toBe(true);

    // Each version logged its own version string; every handover counted, none failed.
    for (let k = 0; k <= RELOADS; k++) {
      expect(logs.some((e) => e.origin === 'guest' && e.message.includes(`ws chat room version v${k}:`))).toBe(true);
    }
    const stats = server.reloadStats();
    expect(stats).toMatchObject({ generation: RELOADS, done: RELOADS, failed: 0, handoversDone: RELOADS * CLIENTS, handoversFailed: 0 });
    expect(stats.drained.map((d) => [d.connections, d.handedOver, d.handoverFailed, d.cut])).toEqual(
      Array.from({ length: RELOADS }, () => [CLIENTS, CLIENTS, 0, 0]),
    );
    expect(server.stats()[0]!.open).toBe(CLIENTS);
    expect(logs.filter((e) => /reload: version \d+ ended; 0 of its \d+ connection\(s\) finished, \d+ moved/.test(e.message))).toHaveLength(
      RELOADS,
    );
    console.log(
      `${backend}: ${CLIENTS} clients, ${RELOADS} reloads in ${reloadsMs} ms, ${sent.length} messages x ${CLIENTS - 1} receivers delivered`,
    );
  });
});
