// A plugin that calls every handle-taking import with handles it must not be
// able to use (assembly/test-plugins/bad-handles): 0, 0xffffffff, bit 31,
// the largest index, a closed listener's and closed streams' stale handles,
// live handles with their generation changed, the backend's reserved slots
// (its epoll and eventfd), out-of-range indices, random values, and the
// wrong kind of handle. Every probe gets bad-handle; nothing traps or ends;
// the plugin reports what it got over the connection and keeps serving
// (echo) on the same and on new connections. An echo plugin served beside
// it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, connect, exchange, fdBaseline, host, readUntil, settleFds, testPlugin, waitFor } from '../helpers/hostile.js';

afterEach(cleanUp);

const CONNECTIONS = 5;

describe('a plugin using stale, forged and wrong-kind handles', () => {
  it(`gets bad-handle for every probe on ${CONNECTIONS} connections and keeps running; its neighbour keeps echoing`, async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const p = await host(testPlugin('bad-handles'));
    // The host is ready at the plugin's first listen, which the plugin then
    // closes (for a stale handle): connect once it says it listens again.
    await p.line(/^listening on /);
    let probes = 0;
    for (let i = 0; i < CONNECTIONS; i++) {
      const sock = await connect(p.port);
      const report = await readUntil(sock, /probes \d+ bad-handle \d+\n/);
      expect(report).not.toContain('UNEXPECTED');
      const m = /^probes (\d+) bad-handle (\d+)\n$/.exec(report)!;
      expect(m, report).not.toBeNull();
      // Stale stream handles add up: each earlier connection's handle is probed too.
      expect(Number(m[1])).toBeGreaterThanOrEqual(5 + 10 * (5 + 20 + 48 - 2) + 10 * i);
      expect(m[2]).toBe(m[1]);
      probes += Number(m[1]);
      // The live stream still works: the plugin echoes on it.
      const msg = Buffer.from(`still serving ${i}\n`);
      expect((await exchange(sock, msg)).equals(msg)).toBe(true);
      sock.end();
      // The plugin closes its side at end of stream: that handle becomes stale for the next connection.
      await waitFor(() => p.server.stats()[0]!.open === 0, 5000);
    }
    console.log(`bad-handles: ${probes} probes over ${CONNECTIONS} connections, all bad-handle`);

    const summaries = p.lines(/^probes \d+ bad-handle \d+$/);
    expect(summaries).toHaveLength(CONNECTIONS);
    expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    expect(p.server.exitReasons()).toEqual([null]);
    expect(p.server.stats()[0]).toMatchObject({ running: true, restarts: 0, ends: {}, accepted: CONNECTIONS });

    expect(await neighbour.finish()).toBeGreaterThan(5);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
