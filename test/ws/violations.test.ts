/**
 * Protocol violations, sent over raw sockets (a library would refuse to
 * produce them): the ws room answers each with a close frame carrying the
 * right code — 1002 for an unmasked frame, reserved bits, an unknown
 * opcode, a bad continuation, a fragmented or oversized control frame;
 * 1007 for text that is not UTF-8 (also when the bad byte or the cut
 * character is in a later fragment); 1009 for a message over maxMessage,
 * whole or summed over fragments — and then ends the connection. Nothing
 * of a failed message reaches the room, and the room keeps working.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { problems, totals, waitFor } from '../helpers/server.js';
import { startWs, openClient, closeWsClients, nextMessages, record, rawUpgrade, frame, type WsServer } from '../helpers/ws.js';

const KiB = 1024;
const MAX_MESSAGE = 64 * KiB; // configured below, so the oversize cases stay small

let ws: WsServer;

beforeAll(async () => {
  ws = await startWs({ config: `maxMessage=${MAX_MESSAGE} closeTimeoutMs=500` });
});

afterEach(() => closeWsClients());

afterAll(async () => {
  closeWsClients();
  await ws?.stop();
});

const TEXT = 1,
  BINARY = 2,
  CONT = 0,
  CLOSE = 8,
  PING = 9;

const cases: [string, number, () => Buffer[]][] = [
  ['an unmasked text frame', 1002, () => [frame(TEXT, 'not masked', { mask: false })]],
  ['an unmasked ping', 1002, () => [frame(PING, 'x', { mask: false })]],
  ['RSV1 set (no extension was negotiated)', 1002, () => [frame(TEXT, 'compressed?', { rsv: 4 })]],
  ['RSV2 set', 1002, () => [frame(BINARY, 'x', { rsv: 2 })]],
  ['RSV3 set', 1002, () => [frame(BINARY, 'x', { rsv: 1 })]],
  ['reserved data opcode 3', 1002, () => [frame(3, 'x')]],
  ['reserved data opcode 7', 1002, () => [frame(7, 'x')]],
  ['reserved control opcode 11', 1002, () => [frame(11, 'x')]],
  ['reserved control opcode 15', 1002, () => [frame(15)]],
  ['a continuation with no message started', 1002, () => [frame(CONT, 'orphan')]],
  ['a new text frame inside a fragmented message', 1002, () => [frame(TEXT, 'a', { fin: false }), frame(TEXT, 'b')]],
  ['a fragmented ping', 1002, () => [frame(PING, 'half', { fin: false })]],
  ['a ping of 126 bytes', 1002, () => [frame(PING, Buffer.alloc(126))]],
  ['a 64-bit length with its top bit set', 1002, () => [frame(BINARY, Buffer.alloc(0), { declaredLength: 1n << 63n })]],
  ['invalid UTF-8 in a text frame', 1007, () => [frame(TEXT, Buffer.from([0x68, 0x69, 0xff]))]],
  ['a UTF-16 surrogate encoded in UTF-8', 1007, () => [frame(TEXT, Buffer.from([0xed, 0xa0, 0x80]))]],
  ['an overlong encoding', 1007, () => [frame(TEXT, Buffer.from([0xc0, 0xaf]))]],
  ['text ending inside a character', 1007, () => [frame(TEXT, Buffer.from([0x61, 0xe2, 0x82]))]],
  ['invalid UTF-8 in the second fragment', 1007, () => [frame(TEXT, 'fine so far', { fin: false }), frame(CONT, Buffer.from([0x80]))]],
  [
    'a character cut across fragments and never finished',
    1007,
    () => [frame(TEXT, Buffer.from([0xf0, 0x9f]), { fin: false }), frame(CONT, Buffer.from([0x98]), { fin: true })],
  ],
  [
    'a frame declaring more than maxMessage (payload never sent)',
    1009,
    () => [frame(BINARY, Buffer.alloc(0), { declaredLength: MAX_MESSAGE + 1 })],
  ],
  ['a frame declaring 2^62 bytes', 1009, () => [frame(BINARY, Buffer.alloc(0), { declaredLength: 1n << 62n })]],
  [
    'fragments that add up to more than maxMessage',
    1009,
    () => [
      frame(BINARY, Buffer.alloc(MAX_MESSAGE / 2), { fin: false }),
      frame(CONT, Buffer.alloc(MAX_MESSAGE / 2), { fin: false }),
      frame(CONT, Buffer.alloc(1)),
    ],
  ],
];

describe('ws protocol violations', () => {
  it.each(cases)('%s → close %i, then the connection ends', async (_name, code, frames) => {
    const listener = await openClient(ws.url);
    const heard = record(listener);
    const raw = await rawUpgrade(ws.port);
    raw.sock.write(Buffer.concat(frames()));
    const close = await raw.frames.closeFrame();
    expect(close.code).toBe(code);
    // The close frame is itself well-formed: FIN, no RSV, unmasked, a UTF-8 reason.
    await raw.frames.end(3_000);
    // The room still works, and heard nothing of the failed message.
    const talker = await openClient(ws.url);
    const next = nextMessages(listener, 1);
    talker.send('still here');
    expect((await next)[0]!.data.toString()).toBe('still here');
    expect(heard.map((m) => m.data.toString())).toEqual(['still here']);
  });

  it('sends a well-formed close frame: FIN, no reserved bits, unmasked, a UTF-8 reason', async () => {
    const raw = await rawUpgrade(ws.port);
    raw.sock.write(frame(TEXT, 'x', { mask: false }));
    const f = await raw.frames.next();
    expect(f).toMatchObject({ fin: true, rsv: 0, opcode: CLOSE, masked: false });
    expect(f.payload.readUInt16BE(0)).toBe(1002);
    expect(new TextDecoder('utf-8', { fatal: true }).decode(f.payload.subarray(2)).length).toBeGreaterThan(0);
  });

  it('accepts a message of exactly maxMessage bytes', async () => {
    const listener = await openClient(ws.url);
    const got = nextMessages(listener, 1);
    const raw = await rawUpgrade(ws.port);
    raw.sock.write(frame(BINARY, Buffer.alloc(MAX_MESSAGE, 1)));
    expect((await got)[0]!.data.length).toBe(MAX_MESSAGE);
  });

  it('ignores what a client sends after a violation', async () => {
    const listener = await openClient(ws.url);
    const heard = record(listener);
    const raw = await rawUpgrade(ws.port);
    raw.sock.write(Buffer.concat([frame(TEXT, 'x', { rsv: 4 }), frame(TEXT, 'after the violation')]));
    expect((await raw.frames.closeFrame()).code).toBe(1002);
    await raw.frames.end(3_000);
    const talker = await openClient(ws.url);
    const next = nextMessages(listener, 1);
    talker.send('marker');
    await next;
    expect(heard.map((m) => m.data.toString())).toEqual(['marker']);
  });

  it('ends a connection whose client never closes its side, closeTimeoutMs (500) after the close frame', async () => {
    // Half-open: this client does not end its side when the server ends
    // its own, so only the server's timer can finish the connection.
    const raw = await rawUpgrade(ws.port, { allowHalfOpen: true });
    raw.sock.write(frame(3, 'x'));
    const t = performance.now();
    expect((await raw.frames.closeFrame()).code).toBe(1002);
    await raw.frames.end(3_000); // the server's FIN, right after the close frame
    expect(totals(ws.server).open).toBeGreaterThanOrEqual(1); // still ours, until the timer
    expect(await waitFor(() => totals(ws.server).open === 0, 3_000, 5)).toBe(true);
    const ms = performance.now() - t;
    expect(ms).toBeGreaterThan(400);
    expect(ms).toBeLessThan(1_500);
  });

  it('logs no warnings or errors throughout', () => {
    expect(problems(ws.logs)).toEqual([]);
  });
});
