/**
 * The plugin's --config string: key=value pairs named as in redis.conf, with
 * Redis's size units, reported back by CONFIG GET; a bad one stops the
 * instance at start with a message that names the problem.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { exchange, startResp, type RespServer } from '../helpers/resp.js';
import { destroyClients } from '../helpers/server.js';

let running: RespServer | null = null;

afterEach(async () => {
  destroyClients();
  await running?.stop();
  running = null;
});

async function configGet(port: number, pattern: string): Promise<string> {
  const [r] = await exchange(port, `CONFIG GET ${pattern}\r\n`, 1);
  return r!;
}

describe('resp: --config', () => {
  it('defaults follow the memory cap: maxmemory 3/8 of it, proto-max-bulk-len an eighth (24 and 8 MiB at 64 MiB)', async () => {
    const resp = (running = await startResp());
    const mib = 1024 * 1024;
    expect(await configGet(resp.port, 'maxmemory')).toBe(`*2\r\n$9\r\nmaxmemory\r\n$8\r\n${24 * mib}\r\n`);
    expect(await configGet(resp.port, 'proto-max-bulk-len')).toBe(`*2\r\n$18\r\nproto-max-bulk-len\r\n$7\r\n${8 * mib}\r\n`);
    expect(await configGet(resp.port, 'hz')).toBe('*2\r\n$2\r\nhz\r\n$2\r\n10\r\n');
    expect(resp.logs.some((l) => l.level === 'info' && /maxmemory 25165824 bytes, hz 10/.test(l.message))).toBe(true);
  });

  it('with another cap, other defaults: --max-memory 128 gives 48 and 16 MiB', async () => {
    const resp = (running = await startResp({ policy: { maxMemoryMiB: 128 } }));
    const mib = 1024 * 1024;
    expect(await configGet(resp.port, 'maxmemory')).toBe(`*2\r\n$9\r\nmaxmemory\r\n$8\r\n${48 * mib}\r\n`);
    expect(await configGet(resp.port, 'proto-max-bulk-len')).toBe(`*2\r\n$18\r\nproto-max-bulk-len\r\n$8\r\n${16 * mib}\r\n`);
  });

  it('takes sizes with units, separated by spaces or commas', async () => {
    const resp = (running = await startResp({
      config: 'maxmemory=2mb, hz=20  proto-max-bulk-len=100k client-query-buffer-limit=1MB maxmemory-clients=512kb',
    }));
    const [all] = await exchange(resp.port, 'CONFIG GET *\r\n', 1);
    // *2n, then $len / text lines: every second line is a name or a value.
    const lines = all!
      .split('\r\n')
      .slice(1, -1)
      .filter((_, i) => i % 2 === 1);
    const values = Object.fromEntries(lines.flatMap((_, i) => (i % 2 ? [] : [[lines[i], lines[i + 1]]])));
    expect(values).toMatchObject({
      maxmemory: String(2 * 1024 * 1024),
      hz: '20',
      'proto-max-bulk-len': '100000',
      'client-query-buffer-limit': String(1024 * 1024),
      'maxmemory-clients': String(512 * 1024),
      'maxmemory-policy': 'noeviction',
      appendonly: 'no',
    });
  });

  it.each([
    ['maxmemory=lots', "maxmemory: 'lots' is not a size"],
    ['maxmemory=1kb', 'maxmemory must be at least 64kb'],
    ['maxmemory=65mb', "maxmemory must be at most the instance's memory cap (67108864 bytes, --max-memory)"],
    ['hz=0', 'hz must be 1 to 500'],
    ['hz=10k', "hz: '10k' is not a number"],
    ['save=900', "unknown key 'save'"],
    ['maxmemory', "expected key=value, got 'maxmemory'"],
    ['proto-max-bulk-len=1mb client-query-buffer-limit=512kb', 'client-query-buffer-limit must be at least proto-max-bulk-len'],
  ])('refuses --config %j at start', async (config, message) => {
    const started = startResp({ config });
    await expect(started).rejects.toThrow(message);
  });
});
