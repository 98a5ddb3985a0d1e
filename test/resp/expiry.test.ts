/**
 * Keys with a time to live really expire: lazily, when a command touches a
 * key past its deadline, and actively, when the expiry cycle (hz times a
 * second) finds it without any client asking, so DBSIZE drops on its own.
 * The active cycle's work is bounded: a keyspace full of expiring keys does
 * not stall the other clients.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { RespClient, command, exchange, startResp, unharmed, type RespServer } from '../helpers/resp.js';
import { destroyClients, problems, sleep } from '../helpers/server.js';

let running: RespServer | null = null;

afterEach(async () => {
  destroyClients();
  if (running) {
    expect(unharmed(running)).toBe(true);
    expect(problems(running.logs)).toEqual([]);
    await running.stop();
  }
  running = null;
});

async function dbsize(port: number): Promise<number> {
  const [r] = await exchange(port, 'DBSIZE\r\n', 1);
  return Number(r!.slice(1, -2));
}

describe('resp: expiry', () => {
  it('SET PX 100: the value is there, and 200 ms later GET returns nil', async () => {
    const resp = (running = await startResp());
    expect(await exchange(resp.port, 'SET k v PX 100\r\nGET k\r\nPTTL k\r\n', 3)).toEqual([
      '+OK\r\n',
      '$1\r\nv\r\n',
      expect.stringMatching(/^:(100|9\d)\r\n$/),
    ]);
    await sleep(200);
    expect(await exchange(resp.port, 'GET k\r\nTTL k\r\nEXISTS k\r\n', 3)).toEqual(['$-1\r\n', ':-2\r\n', ':0\r\n']);
  });

  it('EXPIRE 1: TTL counts down, then the key is gone', async () => {
    const resp = (running = await startResp());
    expect(await exchange(resp.port, 'SET k v\r\nEXPIRE k 1\r\nTTL k\r\n', 3)).toEqual(['+OK\r\n', ':1\r\n', ':1\r\n']);
    await sleep(1100);
    expect(await exchange(resp.port, 'TTL k\r\nGET k\r\n', 2)).toEqual([':-2\r\n', '$-1\r\n']);
  });

  it('lazily: a key past its deadline is deleted when a command touches it', async () => {
    // One cycle a second, the first a second after the first connection:
    // this test is done before any runs.
    const resp = (running = await startResp({ config: 'hz=1' }));
    const c = await RespClient.open(resp.port);
    c.send('SET k v PX 50\r\n');
    expect(await c.reply()).toBe('+OK\r\n');
    await sleep(150);
    // Still counted (nothing touched it yet, as in Redis), gone once GET touches it.
    c.send('DBSIZE\r\nGET k\r\nDBSIZE\r\nINFO stats\r\n');
    const [before, get, after, stats] = await c.replies(4);
    expect([before, get, after]).toEqual([':1\r\n', '$-1\r\n', ':0\r\n']);
    expect(stats).toContain('expired_keys:1\r\n');
  });

  it('actively: DBSIZE drops with no client touching the keys', async () => {
    const resp = (running = await startResp());
    const c = await RespClient.open(resp.port);
    const sets: Buffer[] = [];
    for (let i = 0; i < 1000; i++) sets.push(command('SET', `short:${i}`, 'x', 'PX', '100'));
    for (let i = 0; i < 10; i++) sets.push(command('SET', `long:${i}`, 'x', 'EX', '100'));
    for (let i = 0; i < 10; i++) sets.push(command('SET', `forever:${i}`, 'x'));
    c.send(Buffer.concat(sets));
    await c.replies(1020);
    c.destroy();
    expect(await dbsize(resp.port)).toBe(1020);
    // Only DBSIZE from now on: it reads the count and touches no key.
    await sleep(150);
    const deadline = Date.now() + 3_000;
    let size = await dbsize(resp.port);
    while (size !== 20 && Date.now() < deadline) {
      await sleep(50);
      size = await dbsize(resp.port);
    }
    expect(size).toBe(20);
    const [info] = await exchange(resp.port, 'INFO keyspace\r\nINFO stats\r\n', 2);
    expect(info).toContain('db0:keys=20,expires=10,avg_ttl=0');
  });

  it('actively, in bounded steps: 200,000 keys expire while PING stays fast', async () => {
    const resp = (running = await startResp());
    const n = 200_000;
    const c = await RespClient.open(resp.port);
    for (let from = 0; from < n; from += 10_000) {
      const batch: Buffer[] = [];
      for (let i = from; i < from + 10_000; i++) batch.push(command('SET', `k:${i}`, 'v', 'PX', '3000'));
      c.send(Buffer.concat(batch));
      await c.replies(10_000);
    }
    expect(await dbsize(resp.port)).toBe(n);
    // Each cycle stops after 25 ms (a quarter of its 100 ms period), so a
    // PING waits about that long behind one at worst, however many keys
    // expire (the bound leaves room for a machine busy with other tests).
    let worst = 0;
    let size = n;
    const deadline = Date.now() + 20_000;
    while (size > 0 && Date.now() < deadline) {
      const t = performance.now();
      c.send('PING\r\nDBSIZE\r\n');
      const [pong, count] = await c.replies(2);
      worst = Math.max(worst, performance.now() - t);
      expect(pong).toBe('+PONG\r\n');
      size = Number(count!.slice(1, -2));
      await sleep(5);
    }
    expect(size).toBe(0);
    expect(worst).toBeLessThan(200);
  }, 40_000);
});
