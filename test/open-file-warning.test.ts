// The open-file warning: the plugin servers of one process promise, together,
// workers × maxConnections descriptors; past the process's open-file limit
// (RLIMIT_NOFILE) the OS would refuse connections long before the policies'
// caps, so the host says so, with the total. A reload whose policy changes
// maxConnections replaces that server's share (said again when the new total
// is over the limit); a stopped server's share is given back.
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type LogEntry, type PluginServer } from '../dist/host/index.js';
import { openFileLimit } from '../dist/host/ffi/open-files.js';
import { ECHO_WASM } from './helpers/server.js';

const LIMIT = openFileLimit();
const WARNING =
  /^workers × max-connections of the plugins in this process come to (\d+) descriptors, more than its open-file limit \((\d+), RLIMIT_NOFILE\): connections past it will be refused by the OS$/;
// maxConnections is at most 65,536 per instance: one instance must be able to pass the limit.
const testable = LIMIT !== null && LIMIT < 65_536;

const servers: PluginServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function start(maxConnections: number, logs: LogEntry[]): Promise<PluginServer> {
  const s = await serve({ plugin: ECHO_WASM, listen: ['127.0.0.1:0'], policy: { maxConnections }, logger: (e) => void logs.push(e) });
  servers.push(s);
  await s.ready;
  return s;
}

const warnings = (logs: LogEntry[]) => logs.filter((l) => WARNING.test(l.message)).map((l) => Number(WARNING.exec(l.message)![1]));

describe.skipIf(!testable)(
  `the open-file warning${testable ? '' : ` (skipped: ${LIMIT === null ? 'this OS has no per-process open-file limit' : `the limit, ${LIMIT}, is past what one instance can promise`})`}`,
  () => {
    const limit = LIMIT ?? 0;
    const half = Math.floor(limit / 2);

    it('at start: said once the servers of the process together pass the limit, with the total', async () => {
      const logs: LogEntry[] = [];
      await start(half, logs);
      expect(warnings(logs)).toEqual([]);
      await start(half + 10, logs);
      expect(warnings(logs)).toEqual([2 * half + 10]);
      expect(logs.find((l) => WARNING.test(l.message))).toMatchObject({ level: 'warn', origin: 'host' });
      expect(WARNING.exec(logs.find((l) => WARNING.test(l.message))!.message)![2]).toBe(String(limit));
    });

    it("a reload that raises maxConnections past the limit says so; one that lowers it gives the share back; a stopped server's share is given back", async () => {
      const logs: LogEntry[] = [];
      const a = await start(half, logs);
      await a.reload({ policy: { maxConnections: limit + 1 } });
      expect(warnings(logs)).toEqual([limit + 1]);
      await a.reload({ policy: { maxConnections: half } });
      // Lowered: a second server of half the limit keeps the total under it.
      const b = await start(half - 10, logs);
      expect(warnings(logs)).toEqual([limit + 1]);
      // The same policy again: no change, nothing said.
      await a.reload({ policy: { maxConnections: half } });
      expect(warnings(logs)).toEqual([limit + 1]);
      // Stopped: its share goes; with b's still counted, this one would pass the limit.
      await b.stop();
      await start(half - 5, logs);
      expect(warnings(logs)).toEqual([limit + 1]);
      await a.stop();
    });
  },
);
