// Live handover of the ws chat room on IOCP, under wine (skipped, with the
// reason, without it): fixtures/iocp-ws.mjs serves it in node.exe and
// reloads it 3 times once this side's clients are in; no client is
// disconnected and a message sent after each reload reaches every other
// client. (Sockets are not bound to the completion port: the backend polls
// them through its AFD handle, so a socket moves between instances like on
// epoll.)
import { afterAll, describe, expect, it } from 'vitest';
import { backendTargets, startWasmux, stopAll, type BackendTarget } from '../helpers/backends.js';
import { wineNode } from '../helpers/wine.js';
import { WebSocket } from '../helpers/ws.js';

afterAll(stopAll);
const sockets: WebSocket[] = [];
afterAll(() => {
  for (const s of sockets) s.terminate();
});

const CLIENTS = 50;
const iocp = backendTargets().find((t) => t.name === 'iocp')!;
const wine = wineNode();
const script: BackendTarget = {
  ...iocp,
  spawnArgs: (args) => {
    if ('skip' in wine) throw new Error(wine.skip);
    return { command: wine.command, args: [...wine.args, 'test/handover/fixtures/iocp-ws.mjs', String(CLIENTS), ...args], env: wine.env };
  },
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('live handover on iocp (under wine)', () => {
  it.skipIf(iocp.skipReason !== null)(
    `${CLIENTS} ws clients across 3 reloads: none disconnected, every message delivered`,
    { timeout: 120_000 },
    async () => {
      const proc = startWasmux(script, []);
      const port = Number((await proc.waitFor(/listening on [^\s,]*:(\d+) \(backend iocp\)/, 'stdout', iocp.startTimeoutMs))[1]);
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
          sockets.push(ws);
          const c = { ws, got: new Set<string>(), closed: false };
          ws.on('message', (d: Buffer) => c.got.add(d.toString()));
          ws.on('close', () => (c.closed = true));
          ws.on('error', () => {});
          await new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('error', reject);
          });
          return c;
        }),
      );
      await proc.waitFor(new RegExp(`clients ${CLIENTS}\\n`), 'stdout', 30_000);
      const sent: [number, string][] = [];
      for (let n = 1; n <= 3; n++) {
        await proc.waitFor(new RegExp(`reloaded ${n}: moved ${n * CLIENTS}, failed 0, open ${CLIENTS}\\n`), 'stdout', 30_000);
        const text = `after reload ${n}`;
        clients[n]!.ws.send(text);
        sent.push([n, text]);
      }
      const missing = () => sent.flatMap(([from, text]) => clients.filter((c, i) => i !== from && !c.got.has(text))).length;
      const deadline = performance.now() + 20_000;
      while (missing() > 0 && performance.now() < deadline) await sleep(20);
      expect(missing()).toBe(0);
      expect(clients.filter((c) => c.closed)).toHaveLength(0);
      await proc.waitFor(/versions v0 v1 v2 v3\n/, 'stdout', 10_000);
      const end = await proc.stop('SIGINT', 20_000);
      expect(end.code).toBe(0);
    },
  );
});
