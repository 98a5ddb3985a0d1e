/**
 * Control frames in the ws room: pings are answered with pongs carrying the
 * same payload; the close handshake echoes the client's code and then the
 * server closes the TCP connection; a close frame with a bad code or a
 * reason that is not UTF-8 is answered with 1002 / 1007. A closed client
 * leaves the room: the others no longer send to it.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { problems, totals, waitFor } from '../helpers/server.js';
import {
  startWs,
  openClient,
  closeWsClients,
  closedWith,
  nextMessages,
  rawUpgrade,
  frame,
  closePayload,
  type WsServer,
} from '../helpers/ws.js';

let ws: WsServer;

beforeAll(async () => {
  ws = await startWs();
});

afterEach(() => closeWsClients());

afterAll(async () => {
  closeWsClients();
  await ws?.stop();
});

describe('ws ping/pong', () => {
  it.each([
    ['a text payload', Buffer.from('are you there?')],
    ['an empty payload', Buffer.alloc(0)],
    ['125 bytes (the most a control frame carries)', Buffer.alloc(125, 7)],
  ])('answers a ping with %s with a pong carrying the same bytes', async (_name, payload) => {
    const w = await openClient(ws.url);
    const pong = new Promise<Buffer>((r) => w.once('pong', r));
    w.ping(payload);
    expect(await pong).toEqual(payload);
  });

  it('answers 100 pings in order', async () => {
    const w = await openClient(ws.url);
    const pongs: string[] = [];
    const all = new Promise<void>((r) =>
      w.on('pong', (d: Buffer) => {
        pongs.push(d.toString());
        if (pongs.length === 100) r();
      }),
    );
    for (let i = 0; i < 100; i++) w.ping(`ping ${i}`);
    await all;
    expect(pongs).toEqual(Array.from({ length: 100 }, (_, i) => `ping ${i}`));
  });

  it('ignores an unsolicited pong', async () => {
    const w = await openClient(ws.url);
    w.pong('nobody asked');
    const pong = new Promise<Buffer>((r) => w.once('pong', r));
    w.ping('still alive');
    expect((await pong).toString()).toBe('still alive');
  });

  it('does not broadcast pings or pongs to the room', async () => {
    const a = await openClient(ws.url);
    const b = await openClient(ws.url);
    const firstAtB = nextMessages(b, 1);
    const pong = new Promise((r) => a.once('pong', r));
    a.ping('ping');
    a.pong('pong');
    await pong;
    a.send('the only message');
    expect((await firstAtB)[0]!.data.toString()).toBe('the only message');
  });
});

describe('ws close handshake', () => {
  it.each([1000, 1001, 1003, 1008, 1011, 3000, 4999])('echoes the client’s close code %i', async (code) => {
    const w = await openClient(ws.url);
    const closed = closedWith(w);
    w.close(code, 'goodbye');
    expect((await closed).code).toBe(code);
  });

  it('answers a close frame without a code with one without a code (the client sees 1005)', async () => {
    const w = await openClient(ws.url);
    const closed = closedWith(w);
    w.close();
    expect((await closed).code).toBe(1005);
  });

  it('closes the TCP connection after the close handshake (raw client: close frame back, then end of stream)', async () => {
    const raw = await rawUpgrade(ws.port);
    raw.sock.write(frame(8, closePayload(1000, 'bye')));
    expect(await raw.frames.closeFrame()).toEqual({ code: 1000, reason: '' });
    await raw.frames.end(3_000);
  });

  it.each([
    ['a reserved code (1005)', closePayload(1005), 1002],
    ['a reserved code (1006)', closePayload(1006), 1002],
    ['a code below 1000 (999)', closePayload(999), 1002],
    ['an unassigned code (2000)', closePayload(2000), 1002],
    ['a code above 4999 (5000)', closePayload(5000), 1002],
    ['a one-byte payload', Buffer.from([3]), 1002],
    ['a reason that is not UTF-8', closePayload(1000, Buffer.from([0xc3, 0x28])), 1007],
  ])('answers a close frame with %s with %i', async (_name, payload, expected) => {
    const raw = await rawUpgrade(ws.port);
    raw.sock.write(frame(8, payload));
    expect((await raw.frames.closeFrame()).code).toBe(expected);
    await raw.frames.end(3_000);
  });

  it('removes a closed client from the room and counts no connection left open', async () => {
    const a = await openClient(ws.url);
    const b = await openClient(ws.url);
    const c = await openClient(ws.url);
    const closed = closedWith(b);
    b.close(1000);
    await closed;
    const atC = nextMessages(c, 1);
    a.send('after b left');
    expect((await atC)[0]!.data.toString()).toBe('after b left');
    a.close();
    c.close();
    expect(await waitFor(() => totals(ws.server).open === 0, 5_000)).toBe(true);
  });

  it('logs no warnings or errors throughout', () => {
    expect(problems(ws.logs)).toEqual([]);
  });
});
