/**
 * The resp plugin when memory runs short (the SDK's Server): a flood of
 * connections each sending a SET of a 2 MB value and stopping midway,
 * against a 16 MiB instance with resp's own limit on requests in flight
 * (maxmemory-clients) out of the way. No trap, no restart: new clients get
 * Redis's "-ERR max number of clients reached", the clients sending the
 * largest requests get a protocol error and are closed, a client connected
 * before the flood keeps being served, and once the flood is gone new
 * clients are served again. The episode is logged once.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { destroyClients } from '../helpers/server.js';
import { RespClient, command, startResp, type RespServer } from '../helpers/resp.js';
import { floodUntilRefused, open, until } from '../helpers/pressure.js';

let resp: RespServer | null = null;
afterEach(async () => {
  destroyClients();
  await resp?.stop();
  resp = null;
});

let n = 0;
// A SET whose 2,000,000-byte value stops after 300 KB.
const partialSet = () =>
  Buffer.concat([
    Buffer.from(`*3\r\n$3\r\nSET\r\n$6\r\nkey${String(n++).padStart(3, '0')}\r\n$2000000\r\n`, 'latin1'),
    Buffer.alloc(300_000, 0x62),
  ]);

async function ping(c: RespClient): Promise<string> {
  const before = c.received.length;
  c.send(command('PING'));
  await until(() => c.received.length >= before + 7, 5_000, 'PONG');
  return c.received.subarray(before).toString('latin1');
}

describe('resp under memory pressure', () => {
  it('refuses new clients as Redis does past maxclients, closes the largest requests, keeps serving, never traps', async () => {
    resp = await startResp({ policy: { maxMemoryMiB: 16, maxConnections: 2000, idleTimeoutMs: 0 }, config: 'maxmemory-clients=1gb' });
    const early = await RespClient.open(resp.port);
    expect(await ping(early)).toBe('+PONG\r\n');

    const { flooders, refused } = await floodUntilRefused(resp.server, resp.port, {
      message: partialSet,
      isRefusal: (b) => b.toString('latin1').startsWith('-ERR max number of clients reached'),
      max: 400,
    });
    expect(
      refused,
      `no refusal after ${flooders.length} flood connections; log:\n${resp.logs.map((l) => `${l.level} ${l.message}`).join('\n')}`,
    ).not.toBeNull();
    await until(() => refused!.ended, 5_000, 'the refused client closing');
    expect(refused!.received.toString('latin1')).toBe('-ERR max number of clients reached\r\n');

    const shed = flooders.filter((f) => f.received.length > 0);
    expect(shed.length, `${flooders.length} flood connections`).toBeGreaterThan(0);
    for (const f of shed) expect(f.received.toString('latin1')).toBe('-ERR Protocol error: request too large for the memory left\r\n');

    console.log(`${flooders.length} flood connections before the first refusal, ${shed.length} of them shed`);
    expect(await ping(early)).toBe('+PONG\r\n');
    const st = resp.server.stats()[0]!;
    expect(st.ends).toEqual({});
    expect(st.restarts).toBe(0);
    expect(resp.logs.filter((l) => l.message.startsWith('memory pressure: '))).toHaveLength(1);

    for (const f of flooders) f.sock.destroy();
    await until(() => resp!.logs.some((l) => l.message.startsWith('memory pressure over after ')), 10_000, 'the end of the episode');
    const late = await open(resp.port);
    late.sock.write(command('SET', 'after', 'flood'));
    await until(() => late.received.length >= 5, 5_000, 'a reply to a new client');
    expect(late.received.toString('latin1')).toBe('+OK\r\n');
    late.sock.destroy();
    expect(await ping(early)).toBe('+PONG\r\n');
  }, 120_000);
});
