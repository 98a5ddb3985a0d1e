// A plugin whose entry point returns `ok` at once (assembly/test-plugins/
// return-at-once): the instance ends, is not restarted (returning is not a
// crash), the end is logged once; through the API `ready` rejects (it never
// listened) and `finished()` resolves; `wasmux run` of it exits by itself.
// An echo plugin served beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, fdBaseline, host, settleFds, sleep, testPlugin, withTimeout } from '../helpers/hostile.js';
import { wasmux } from '../helpers/cli.js';

afterEach(cleanUp);

describe('a plugin returning from its entry point at once', () => {
  it('ends once, is not restarted, and the end is logged once; its neighbour keeps echoing', async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const p = await host(testPlugin('return-at-once'), { waitReady: false });
    const err = await withTimeout(
      p.server.ready.then(
        () => null,
        (e: Error & { code?: string }) => e,
      ),
      5000,
      'ready',
    );
    expect(err?.code).toBe('WASMUX_ERR_PLUGIN_FAILED');
    expect(err?.message).toBe('plugin return-at-once ended before it was ready');
    await withTimeout(p.server.finished(), 5000, 'finished()');
    // Longer than any restart delay would be: nothing comes back.
    await sleep(1000);
    expect(p.count(/^returning at once$/), dump(p.logs)).toBe(1);
    expect(p.count(/^run returned; instance ended$/)).toBe(1);
    expect(p.count(/restarting/)).toBe(0);
    expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    expect(p.server.exitReasons()).toEqual(['returned']);
    expect(p.server.stats()[0]).toMatchObject({ running: false, restarts: 0, ends: { returned: 1 } });
    expect(p.server.failed).toBeNull();

    expect(await neighbour.finish()).toBeGreaterThan(20);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);

  it('lets `wasmux run` exit by itself: 0 without addresses, 1 (never ready) with one', async () => {
    const a = await wasmux(['run', 'dist/test-plugins/return-at-once.wasm'], 10_000);
    expect(a.signal).toBeNull();
    expect(a.code).toBe(0);
    expect(a.stderr.match(/run returned; instance ended/g)).toHaveLength(1);
    const b = await wasmux(['run', 'dist/test-plugins/return-at-once.wasm', '--listen', '127.0.0.1:0'], 10_000);
    expect(b.signal).toBeNull();
    expect(b.code).toBe(1);
    expect(b.stderr).toContain('wasmux: error WASMUX_ERR_PLUGIN_FAILED: plugin return-at-once ended before it was ready');
    expect(b.stderr.match(/run returned; instance ended/g)).toHaveLength(1);
  }, 30_000);
});
