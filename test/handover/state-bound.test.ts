// A ws member whose handover state is over handover-state-bytes (a message
// under way: its bytes so far travel in the state) is closed alone when the
// old version gives it; the other members move and keep talking. Through
// the CLI (SIGHUP reloads, the per-reload line, SIGUSR2's counters), on
// epoll and poll(2).
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { backendTargets, startServer, stopAll } from '../helpers/backends.js';
import { WebSocket, upgradeRequest } from '../helpers/ws.js';

afterAll(stopAll);
const sockets: (Socket | WebSocket)[] = [];
afterAll(() => {
  for (const s of sockets) s instanceof WebSocket ? s.terminate() : s.destroy();
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
async function until(what: () => string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await sleep(10);
  }
}

const BOUND = 100;
const targets = backendTargets().filter((t) => t.name === 'epoll' || t.name === 'poll');

describe.each(targets)('a handover state over the bound, on $label', (target) => {
  it.skipIf(target.skipReason !== null)('that member is closed alone; the others move and talk', { timeout: 30_000 }, async () => {
    const server = await startServer(target, 'dist/plugins/ws.wasm', ['--handover-state-bytes', String(BOUND)]);
    const url = `ws://127.0.0.1:${server.port}/`;
    const members = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const ws = new WebSocket(url, { perMessageDeflate: false });
        sockets.push(ws);
        const m = { ws, got: [] as string[], closed: false };
        ws.on('message', (d: Buffer) => m.got.push(d.toString()));
        ws.on('close', () => (m.closed = true));
        ws.on('error', () => {});
        await new Promise<void>((resolve, reject) => {
          ws.once('open', () => resolve());
          ws.once('error', reject);
        });
        return m;
      }),
    );
    // A raw member with a text message under way: a 1,000-byte frame of which 200 bytes are sent (mask key 0).
    const raw = connect(server.port, '127.0.0.1');
    sockets.push(raw);
    let rawText = '';
    let rawEnded = false;
    raw.setEncoding('latin1');
    raw.on('data', (d: string) => (rawText += d));
    raw.on('end', () => (rawEnded = true));
    raw.on('error', () => (rawEnded = true));
    raw.write(upgradeRequest());
    await until(
      () => rawText,
      () => rawText.includes('\r\n\r\n'),
    );
    expect(rawText).toMatch(/^HTTP\/1\.1 101 /);
    raw.write(Buffer.concat([Buffer.from([0x81, 0x80 | 126, 1000 >> 8, 1000 & 0xff, 0, 0, 0, 0]), Buffer.alloc(200, 'a')]));
    await sleep(100);

    server.child.kill('SIGHUP');
    await server.waitFor(/reload: version 0 ended; .*4 moved to version 1 \(1 handover\(s\) failed\)/, 'stderr', 15_000);
    await until(
      () => 'the raw member is closed',
      () => rawEnded,
    );

    // The others are in version 1's room.
    members[0]!.ws.send('after the reload');
    await until(
      () => JSON.stringify(members.map((m) => m.got)),
      () => members.slice(1).every((m) => m.got.includes('after the reload')),
    );
    expect(members.map((m) => m.closed)).toEqual([false, false, false, false]);
    expect(server.stderr()).toMatch(/handover: a state of \d+ bytes is over handover-state-bytes \(100\)/);

    server.child.kill('SIGUSR2');
    await server.waitFor(
      /ws reloads: done 1, failed 0; .*connections handed over 4, failed 1; connections drained per version: v0 5 \(4 moved, 1 failed\)/,
      'stderr',
      5000,
    );
  });
});
