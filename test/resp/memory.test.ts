/**
 * The resp plugin inside its memory cap. An allocation past the cap traps
 * the instance (it restarts empty, every client loses its connection), so
 * the store refuses writes with -OOM before its budget (maxmemory) is
 * reached, while reads, DEL and FLUSHALL keep working; and clients cannot
 * take the memory some other way (huge or many concurrent requests,
 * thousands of connections).
 */
import { describe, it, expect, afterEach } from 'vitest';
import { RespClient, cli, command, exchange, missing, startResp, unharmed, type RespServer } from '../helpers/resp.js';
import { destroyClients, problems, runPool } from '../helpers/server.js';

const MiB = 1024 * 1024;
const OOM = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
let running: RespServer | null = null;

afterEach(async () => {
  destroyClients();
  await running?.stop();
  running = null;
});

/** The numeric fields of INFO (one connection). */
async function info(port: number): Promise<Record<string, number>> {
  const [text] = await exchange(port, 'INFO\r\n', 1);
  const fields: Record<string, number> = {};
  for (const m of text!.matchAll(/\r\n([a-z_]+):(\d+)(?=\r\n)/g)) fields[m[1]!] = Number(m[2]);
  return fields;
}

/** SETs key:0, key:1, ... (valueSize bytes each, 100 per write) until one is refused; returns how many were stored. */
async function fill(c: RespClient, valueSize: number, prefix = 'key'): Promise<number> {
  const value = Buffer.alloc(valueSize, 0x76);
  for (let n = 0; ; n += 100) {
    c.send(Buffer.concat(Array.from({ length: 100 }, (_, i) => command('SET', `${prefix}:${n + i}`, value))));
    const replies = await c.replies(100);
    const refused = replies.indexOf(OOM);
    if (refused >= 0) {
      // Once refused, every later write in the batch is refused too.
      expect(replies.slice(0, refused).every((r) => r === '+OK\r\n')).toBe(true);
      expect(replies.slice(refused).every((r) => r === OOM)).toBe(true);
      return n + refused;
    }
    if (n > 1_000_000) throw new Error('never refused');
  }
}

describe('resp: out of memory', () => {
  it('refuses writes with -OOM at maxmemory under a small cap, keeps serving reads, and lives', async () => {
    const resp = (running = await startResp({ policy: { maxMemoryMiB: 8 }, config: 'maxmemory=3mb' }));
    const c = await RespClient.open(resp.port);
    const stored = await fill(c, 1000);
    expect(stored).toBeGreaterThan(2000); // most of the 3 MiB holds values
    // Deadlines for every key: EXPIRE is not refused (it adds nothing), and
    // the list of keys with deadlines had its room taken when they were added.
    c.send(Buffer.concat(Array.from({ length: stored }, (_, i) => command('EXPIRE', `key:${i}`, '1000'))));
    expect((await c.replies(stored)).every((r) => r === ':1\r\n')).toBe(true);
    const used = (await info(resp.port)).used_memory!;
    expect(used).toBeLessThanOrEqual(3 * MiB);
    expect(used).toBeGreaterThan(2.5 * MiB);

    // A write is refused when what it may add does not fit: every write at
    // least as large as the one refused is refused too (a smaller one may
    // still fit, until there is no room for even the smallest)...
    const v = 'v'.repeat(1000);
    c.send(Buffer.concat([command('SET', 'new', v), command('INCR', v), command('MSET', 'a', v, 'b', v), command('SET', 'key:0', v)]));
    expect(await c.replies(4)).toEqual([OOM, OOM, OOM, OOM]);
    // ...reads are not.
    c.send(
      Buffer.concat([
        command('GET', 'key:7'),
        command('MGET', 'key:1', 'nope'),
        command('EXISTS', 'key:2'),
        command('DBSIZE'),
        command('TTL', 'key:3'),
        command('PING'),
      ]),
    );
    expect(await c.replies(6)).toEqual([
      `$1000\r\n${'v'.repeat(1000)}\r\n`,
      `*2\r\n$1000\r\n${'v'.repeat(1000)}\r\n$-1\r\n`,
      ':1\r\n',
      `:${stored}\r\n`,
      ':1000\r\n',
      '+PONG\r\n',
    ]);
    if (missing('redis-cli') === null) {
      expect(await cli(resp.port, ['SET', 'k', v])).toBe("(error) OOM command not allowed when used memory > 'maxmemory'.\n");
      expect(await cli(resp.port, ['GET', 'key:5'])).toBe(`"${'v'.repeat(1000)}"\n`);
    }

    // Deleting makes room again; FLUSHALL gives everything back.
    c.send(
      Buffer.concat([
        command('DEL', ...Array.from({ length: 100 }, (_, i) => `key:${i}`)),
        command('SET', 'new', 'v'),
        command('EXPIRE', 'key:100', '100'),
      ]),
    );
    expect(await c.replies(3)).toEqual([':100\r\n', '+OK\r\n', ':1\r\n']);
    c.send('FLUSHALL\r\nSET again v\r\n');
    expect(await c.replies(2)).toEqual(['+OK\r\n', '+OK\r\n']);
    const after = await info(resp.port);
    expect(after.used_memory).toBeLessThan(4096);
    expect(after.wasm_memory).toBeLessThanOrEqual(8 * MiB);
    expect(unharmed(resp)).toBe(true);
    expect(problems(resp.logs)).toEqual([]);
  });

  it('stays up under mixed value sizes, four clients filling and deleting at once (small cap)', async () => {
    const resp = (running = await startResp({ policy: { maxMemoryMiB: 8 }, config: 'maxmemory=3mb' }));
    const maxBulk = (8 * MiB) / 8; // proto-max-bulk-len follows the memory cap
    let refused = 0;
    let evicted = 0;
    await runPool(4, 4, async (client) => {
      let c = await RespClient.open(resp.port);
      let seed = client + 1;
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      for (let round = 0; round < 150; round++) {
        const key = `c${client}:${random(40)}`;
        const op = random(10);
        if (op < 6) {
          c.send(command('SET', key, Buffer.alloc(1 + random(maxBulk), 0x61 + client)));
          const r = await c.reply(20_000).catch(() => null);
          if (r === null) {
            // Closed while its value arrived: the four clients' values in
            // flight passed maxmemory-clients (a quarter of maxmemory).
            expect(await c.closed()).toBe(true);
            evicted++;
            c = await RespClient.open(resp.port);
          } else if (r === OOM) {
            refused++;
          } else {
            expect(r).toBe('+OK\r\n');
          }
        } else if (op < 8) {
          c.send(command('GET', key));
          expect(await c.reply(20_000)).toMatch(/^\$(-1|\d+)\r\n/);
        } else {
          c.send(command('DEL', key));
          expect(await c.reply()).toMatch(/^:[01]\r\n$/);
        }
      }
      c.destroy();
    });
    expect(refused).toBeGreaterThan(0); // the budget was reached, and held
    expect((await info(resp.port)).used_memory).toBeLessThanOrEqual(3 * MiB);
    expect(unharmed(resp)).toBe(true);
    const warnings = problems(resp.logs);
    expect(warnings.length).toBe(evicted);
    for (const w of warnings) expect(w.message).toMatch(/closing a client whose request passed maxmemory-clients/);
  }, 60_000);

  it('under the default cap: full store, then eight clients sending 3 MiB values at once', async () => {
    const resp = (running = await startResp());
    const c = await RespClient.open(resp.port);
    await fill(c, 16 * 1024);
    expect((await info(resp.port)).used_memory).toBeLessThanOrEqual(24 * MiB);
    // Each is refused (-OOM) once it has arrived, or its connection closed
    // while it arrives once the requests in flight pass maxmemory-clients.
    const big = Buffer.alloc(3 * MiB, 0x62);
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const b = await RespClient.open(resp.port);
        b.send(command('SET', `big:${i}`, big));
        try {
          return await b.reply(20_000);
        } catch {
          return (await b.closed()) ? 'closed' : 'nothing';
        }
      }),
    );
    for (const o of outcomes) expect([OOM, 'closed']).toContain(o);
    expect(await exchange(resp.port, 'GET key:0\r\n', 1)).toEqual([`$${16 * 1024}\r\n${'v'.repeat(16 * 1024)}\r\n`]);
    expect((await info(resp.port)).wasm_memory).toBeLessThanOrEqual(64 * MiB);
    expect(unharmed(resp)).toBe(true);
  }, 60_000);
});

describe('resp: connections', () => {
  it('serves 10,000 connections one after another without its memory growing', async () => {
    const resp = (running = await startResp());
    await runPool(10_000, 20, async (i) => {
      const [pong] = await exchange(resp.port, i % 2 ? 'PING\r\n' : command('PING'), 1);
      expect(pong).toBe('+PONG\r\n');
    });
    // Each connection's buffers are given back when it closes (before the
    // SDK's Server did so, about 7,000 connections ran a 64 MiB instance out).
    // A client's close is seen when the server next reads that connection,
    // which may come after it answers an INFO: ask until only the asker is left.
    let after = await info(resp.port);
    let asked = 1;
    for (const deadline = Date.now() + 3_000; after.connected_clients !== 1 && Date.now() < deadline; asked++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await info(resp.port);
    }
    expect(after.wasm_memory).toBeLessThanOrEqual(16 * MiB);
    expect(after.connected_clients).toBe(1); // the one asking
    expect(after.total_connections_received).toBe(10_000 + asked);
    expect(unharmed(resp)).toBe(true);
    expect(problems(resp.logs)).toEqual([]);
  }, 60_000);
});
