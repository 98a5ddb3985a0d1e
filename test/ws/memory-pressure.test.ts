/**
 * The ws plugin when memory runs short (the SDK's Server): a flood of
 * clients that each upgrade, then send the start of a 900 KB message and
 * stop midway, against a 16 MiB instance with the room's own budget
 * (maxBuffered) out of the way. No trap, no restart: new upgrades are
 * refused with a 503, the clients sending the largest messages are closed
 * with 1009, two clients connected before the flood keep talking, and once
 * the flood is gone new clients join again. The episode is logged once.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { closeWsClients, frame, nextMessages, openClient, startWs, upgradeRequest, type WsServer } from '../helpers/ws.js';
import { floodUntilRefused, until } from '../helpers/pressure.js';

let ws: WsServer | null = null;
afterEach(async () => {
  closeWsClients();
  await ws?.stop();
  ws = null;
});

// The upgrade, then a binary frame announcing 900,000 bytes of which 300,000 come.
const partialMessage = () =>
  Buffer.concat([Buffer.from(upgradeRequest(), 'latin1'), frame(2, Buffer.alloc(300_000, 0x63), { declaredLength: 900_000 })]);

/** The close code of the first close frame after the 101 response, or null. */
function closeCode(received: Buffer): number | null {
  const head = received.indexOf('\r\n\r\n');
  if (head < 0 || !received.subarray(0, 13).equals(Buffer.from('HTTP/1.1 101 '))) return null;
  const f = received.subarray(head + 4);
  return f.length >= 4 && f[0] === 0x88 ? f.readUInt16BE(2) : null;
}

describe('ws under memory pressure', () => {
  it('refuses new upgrades with 503, closes the largest messages with 1009, keeps the room talking, never traps', async () => {
    ws = await startWs({ policy: { maxMemoryMiB: 16, maxConnections: 2000, idleTimeoutMs: 0 }, config: 'maxBuffered=1073741824' });
    const a = await openClient(ws.url);
    const b = await openClient(ws.url);
    const got = nextMessages(b, 1);
    a.send('before the flood');
    expect((await got).map((m) => m.data.toString())).toEqual(['before the flood']);

    const { flooders, refused } = await floodUntilRefused(ws.server, ws.port, {
      message: partialMessage,
      isRefusal: (r) => r.toString('latin1').startsWith('HTTP/1.1 503 '),
      max: 400,
    });
    expect(refused, `no refusal after ${flooders.length} flood connections`).not.toBeNull();
    await until(() => refused!.ended, 5_000, 'the refused connection closing');
    expect(refused!.received.toString('latin1')).toMatch(
      /^HTTP\/1\.1 503 Service Unavailable\r\n[\s\S]*Connection: close\r\n\r\nService Unavailable: no memory for another client\n$/,
    );

    await until(() => flooders.some((f) => closeCode(f.received) !== null), 5_000, 'a close frame to a shed client');
    const codes = flooders.map((f) => closeCode(f.received)).filter((c) => c !== null);
    expect(codes.length).toBeGreaterThan(0);
    expect(new Set(codes)).toEqual(new Set([1009]));

    console.log(`${flooders.length} flood connections before the first refusal, ${codes.length} of them shed`);
    const during = nextMessages(a, 1);
    b.send('during the flood');
    expect((await during).map((m) => m.data.toString())).toEqual(['during the flood']);
    const st = ws.server.stats()[0]!;
    expect(st.ends).toEqual({});
    expect(st.restarts).toBe(0);
    expect(ws.logs.filter((l) => l.message.startsWith('memory pressure: '))).toHaveLength(1);

    for (const f of flooders) f.sock.destroy();
    await until(() => ws!.logs.some((l) => l.message.startsWith('memory pressure over after ')), 10_000, 'the end of the episode');
    const c = await openClient(ws.url);
    const after = nextMessages(c, 1);
    a.send('after the flood');
    expect((await after).map((m) => m.data.toString())).toEqual(['after the flood']);
  }, 120_000);
});
