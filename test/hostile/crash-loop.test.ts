// A plugin that traps every time it starts (assembly/test-plugins/
// trap-at-start): after 5 deaths at start in a row the supervisor stops it
// with WASMUX_ERR_CRASH_LOOP (PluginServer.failed, a rejected `ready`) rather
// than restarting it forever; `wasmux run` of it exits non-zero naming the
// code. An echo plugin served beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, fdBaseline, host, settleFds, sleep, testPlugin, withTimeout } from '../helpers/hostile.js';
import { wasmux } from '../helpers/cli.js';

afterEach(cleanUp);

describe('a plugin that always traps at start', () => {
  it('is tried 5 times, then reported failed with WASMUX_ERR_CRASH_LOOP; its neighbour keeps echoing', async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const t = performance.now();
    const p = await host(testPlugin('trap-at-start'), { waitReady: false });
    const err = await withTimeout(
      p.server.ready.then(
        () => null,
        (e: Error & { code?: string }) => e,
      ),
      15_000,
      'crash loop',
    );
    const ms = performance.now() - t;
    expect(err?.code).toBe('WASMUX_ERR_CRASH_LOOP');
    expect(err?.message).toMatch(
      /^plugin trap-at-start: instance 0 failed 5 times in a row at start \(last: trapped: unreachable .*\); the plugin is stopped$/,
    );
    expect(p.server.failed).toBe(err);
    await withTimeout(p.server.finished(), 5000, 'finished()');
    await sleep(500); // no sixth try comes
    console.log(`trap-at-start: given up on after 5 tries in ${ms.toFixed(0)} ms (backoff 100+200+400+800 ms)`);

    expect(p.count(/^trapping at start$/)).toBe(5);
    expect(p.count(/^trapped: unreachable \(linear memory [\d.]+ MiB of 64 MiB allowed\)$/), dump(p.logs)).toBe(5);
    expect(p.count(/failed 5 times in a row at start/)).toBe(1);
    expect(p.count(/^restarting in (100|200|400|800) ms$/)).toBe(4);
    const st = p.server.stats()[0]!;
    expect(st).toMatchObject({ running: false, restarts: 4, ends: { trapped: 5 } });
    expect(p.server.exitReasons()).toEqual(['trapped']);

    expect(await neighbour.finish()).toBeGreaterThan(10);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);

  it('makes `wasmux run` exit non-zero with WASMUX_ERR_CRASH_LOOP', async () => {
    const r = await wasmux(['run', 'dist/test-plugins/trap-at-start.wasm', '--listen', '127.0.0.1:0'], 20_000);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^wasmux: error WASMUX_ERR_CRASH_LOOP: plugin trap-at-start: instance 0 failed 5 times in a row at start/m);
    expect(r.stderr.match(/trap-at-start\[0\] error: trapped: /g)).toHaveLength(5);
    expect(r.stdout).not.toMatch(/listening on/);
  }, 30_000);
});
