/**
 * The same ws plugin on every I/O backend this host offers here
 * (`availableBackends()`): a smoke test per backend — the upgrade, text,
 * binary and fragmented messages across the room, a ping, a protocol
 * violation closed with 1002, the close handshake, and no connection left.
 */
import '../stand-ins/kqueue/here.js';
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { availableBackends } from '../../dist/host/index.js';
import { problems, totals, waitFor } from '../helpers/server.js';
import { startWs, openClient, closeWsClients, closedWith, nextMessages, rawUpgrade, frame, type WsServer } from '../helpers/ws.js';

const backends = availableBackends();
let running: WsServer | null = null;

afterEach(async () => {
  closeWsClients();
  await running?.stop();
  running = null;
});

describe('ws on every available backend', () => {
  it('has at least one backend here', () => {
    expect(backends.length).toBeGreaterThan(0);
  });

  it.each(backends)(
    'backend %s: upgrade, messages, ping, a violation, close',
    async (backend) => {
      const ws = (running = await startWs({ backend }));
      const a = await openClient(ws.url);
      const b = await openClient(ws.url);

      const bin = randomBytes(200_000);
      const got = nextMessages(b, 3);
      a.send(`hello via ${backend}`);
      a.send(bin, { binary: true });
      a.send('frag', { fin: false });
      a.send('mented', { fin: true });
      const [text, binary, fragmented] = await got;
      expect(text).toEqual({ data: Buffer.from(`hello via ${backend}`), binary: false });
      expect(binary!.binary).toBe(true);
      expect(binary!.data.equals(bin)).toBe(true);
      expect(fragmented!.data.toString()).toBe('fragmented');

      const pong = new Promise<Buffer>((r) => a.once('pong', r));
      a.ping('p');
      expect((await pong).toString()).toBe('p');

      const raw = await rawUpgrade(ws.port);
      raw.sock.write(frame(1, 'unmasked', { mask: false }));
      expect((await raw.frames.closeFrame()).code).toBe(1002);
      await raw.frames.end(3_000);

      const closed = closedWith(a);
      a.close(1000);
      expect((await closed).code).toBe(1000);
      b.close();
      expect(await waitFor(() => totals(ws.server).open === 0, 5_000)).toBe(true);
      expect(problems(ws.logs)).toEqual([]);
    },
    30_000,
  );
});
