/**
 * Multi-megabyte values at the defaults: proto-max-bulk-len follows the
 * memory cap (8 MiB at the default 64 MiB), so a 4 MB value is stored and
 * read back, byte for byte, by a raw client and by redis-cli.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyClients } from '../helpers/server.js';
import { RespClient, command, missing, runProgram, startResp, unharmed, type RespServer } from '../helpers/resp.js';

let resp: RespServer | null = null;
afterEach(async () => {
  destroyClients();
  await resp?.stop();
  resp = null;
});

const FOUR_MB = 4_000_000;

describe('resp: large values at the defaults', () => {
  it('SET and GET of a 4 MB value, byte for byte', async () => {
    resp = await startResp();
    const value = randomBytes(FOUR_MB);
    const c = await RespClient.open(resp.port);
    c.send(command('SET', 'big', value));
    expect(await c.reply(20_000)).toBe('+OK\r\n');
    c.send(command('GET', 'big'));
    const got = await c.reply(20_000);
    expect(got.length).toBe(`$${FOUR_MB}\r\n`.length + FOUR_MB + 2);
    expect(Buffer.from(got, 'latin1').subarray(`$${FOUR_MB}\r\n`.length, -2).equals(value)).toBe(true);
    c.destroy();
    expect(unharmed(resp)).toBe(true);
  }, 60_000);

  const noCli = missing('redis-cli');
  it.skipIf(noCli !== null)(
    `through redis-cli (-x SET from a file, GET back)${noCli ? ` — skipped: ${noCli}` : ''}`,
    async () => {
      resp = await startResp();
      const dir = await mkdtemp(join(tmpdir(), 'wasmux-resp-'));
      try {
        // Printable bytes, so that redis-cli prints the value back as it is.
        const value = Buffer.from(randomBytes(FOUR_MB / 2).toString('hex'), 'latin1');
        const file = join(dir, 'value');
        await writeFile(file, value);
        const set = await runProgram('sh', ['-c', `redis-cli -h 127.0.0.1 -p ${resp.port} -x SET big < ${file}`], { timeoutMs: 30_000 });
        expect(set.stdout.trim()).toBe('OK');
        const get = await runProgram('redis-cli', ['-h', '127.0.0.1', '-p', String(resp.port), '--raw', 'GET', 'big'], {
          timeoutMs: 30_000,
        });
        expect(get.stdout.length).toBe(FOUR_MB + 1); // and redis-cli's newline
        expect(get.stdout.slice(0, FOUR_MB) === value.toString('latin1')).toBe(true);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      expect(unharmed(resp)).toBe(true);
    },
    60_000,
  );
});
