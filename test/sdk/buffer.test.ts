// The SDK's byte buffers (assembly/sdk/buffer.ts, ByteBuffer) and their pool
// (assembly/sdk/pool.ts), unit-tested inside a real instance: the test plugin
// assembly/test-plugins/sdk-units runs its tests in run() and logs "ok <name>"
// per test passed and "FAIL <name>: <what>" per failed check. Here: every
// test ran and passed (lazy allocation, initial capacity, append, consume,
// truncate, reserve and commit, growth and what growthFor predicts,
// compaction, release, search, clear, the pool), and each misuse the buffer
// asserts against traps with the assert's message.
import { describe, it, expect, beforeAll, afterEach } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadPlugin, serve, type LoadedPlugin, type LogEntry, type PluginServer } from '../../dist/host/index.js';
import { waitFor, withTimeout } from '../helpers/server.js';

const PLUGIN = fileURLToPath(new URL('../../dist/test-plugins/sdk-units.wasm', import.meta.url));

const TESTS = [
  'lazy allocation',
  'initial capacity',
  'append',
  'consume',
  'truncate',
  'reserve and commit',
  'growth',
  'compaction',
  'growth with unread bytes not at the front',
  'release',
  'search',
  'clear',
  'pool',
];

let plugin: LoadedPlugin;
let running: PluginServer | null = null;

beforeAll(async () => {
  plugin = await loadPlugin(PLUGIN);
});

afterEach(async () => {
  await running?.stop();
  running = null;
});

/** Serves the plugin (no address: it only runs its tests) with `config`; its log. */
async function start(config: string): Promise<{ server: PluginServer; logs: LogEntry[] }> {
  const logs: LogEntry[] = [];
  const server = await serve({ plugin, config, logger: (e) => logs.push(e) });
  running = server;
  return { server, logs };
}

const guest = (logs: readonly LogEntry[]) => logs.filter((l) => l.origin === 'guest').map((l) => `${l.level}: ${l.message}`);

describe('ByteBuffer and the buffer pool, in a guest', () => {
  it('pass every unit test of assembly/test-plugins/sdk-units', async () => {
    const { server, logs } = await start('');
    await withTimeout(server.finished(), 20_000, 'the unit tests');
    const lines = guest(logs);
    expect(
      lines.filter((l) => !l.startsWith('info: ok ')),
      lines.join('\n'),
    ).toEqual([]);
    expect(lines).toEqual(TESTS.map((t) => `info: ok ${t}`));
    expect(server.exitReasons()).toEqual(['returned']);
  });

  it.each([
    ['consume', /^ByteBuffer consume past the end at .*sdk\/buffer\.ts:\d+:\d+$/],
    ['consume-negative', /^ByteBuffer consume past the end at .*sdk\/buffer\.ts:\d+:\d+$/],
    ['truncate', /^ByteBuffer truncate past the end at .*sdk\/buffer\.ts:\d+:\d+$/],
    ['commit', /^ByteBuffer commit past its space at .*sdk\/buffer\.ts:\d+:\d+$/],
    ['at', /^ByteBuffer index out of range at .*sdk\/buffer\.ts:\d+:\d+$/],
  ])('traps on a misuse it asserts against: %s', async (which, message) => {
    const { server, logs } = await start(`trap:${which}`);
    expect(await waitFor(() => logs.some((l) => l.origin === 'host' && /^trapped: /.test(l.message)), 10_000), guest(logs).join('\n')).toBe(
      true,
    );
    const errors = logs.filter((l) => l.origin === 'guest' && l.level === 'error').map((l) => l.message);
    expect(errors[0]).toMatch(message);
    // The trap ended the instance; nothing it said claims the misuse went through.
    expect(guest(logs).filter((l) => l.includes('without a trap'))).toEqual([]);
    expect(server.stats()[0]!.ends.trapped).toBeGreaterThanOrEqual(1);
  });
});
