// Plugin-defined metrics across incarnations: a raw-WAT plugin that, once
// listening, defines a counter, reports 5, waits a while and traps. Its
// restarted incarnation defines it again and its value starts from 0 again
// (5, not 10: a counter reset, as wasmux_cpu_seconds_total); while no
// incarnation runs it has no series. A reload's new version defines its own.
import { describe, it, expect, afterEach } from 'vitest';
import { cleanUp, dump, host, waitFor } from '../helpers/hostile.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const RET = 1200;
function plugin(waitMs: number, trap: boolean): string {
  return `(module
  ${IMPORTS}
  ${runtime()}
  (data (i32.const 4000) "n_total")
  ${listenThen(
    `(call $mdefine (i32.const 0) (i32.const 4000) (i32.const 7) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const ${RET}))
    (call $mseries (i32.load (i32.const ${RET + 4})) (i32.const 8) (i32.const 0) (i32.const ${RET}))
    (i32.store (i32.const 4200) (i32.load (i32.const ${RET + 4})))
    (f64.store (i32.const 4208) (f64.const 5))
    (call $mreport (i32.const 4200) (i32.const 1) (i32.const ${RET}))
    (call $wait (i32.const 16) (i32.const 1) (i32.const ${waitMs}) (i32.const 2048))
    ${trap ? 'unreachable' : '(loop $forever (call $wait (i32.const 16) (i32.const 1) (i32.const 50) (i32.const 2048)) (br $forever))'}`,
    { loop: false },
  )})`;
}

const value = (p: Awaited<ReturnType<typeof host>>) => {
  const m = p.server.pluginMetrics()[0];
  return m === undefined ? undefined : m.values[0];
};

describe('plugin-defined metrics across restarts and reloads', () => {
  it('start from 0 in a restarted incarnation, which defines them again', async () => {
    const p = await host(await watPlugin('metrics-restart', plugin(1500, true)));
    expect(await waitFor(() => value(p) === 5, 5_000), dump(p.logs)).toBe(true);
    // The trap ends it; the next incarnation reports its own 5.
    expect(await waitFor(() => p.server.stats()[0]!.restarts >= 1 && value(p) === 5, 15_000), dump(p.logs)).toBe(true);
    expect(p.server.pluginMetrics()[0]!.metrics.get(1)!.name).toBe('n_total');
    expect(p.lines(/^trapped: /).length).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('are the new version’s after a reload', async () => {
    const file = await watPlugin('metrics-reload', plugin(50, false));
    const p = await host(file);
    expect(await waitFor(() => value(p) === 5, 5_000), dump(p.logs)).toBe(true);
    const before = p.server.pluginMetrics()[0]!.values;
    const r = await p.server.reload();
    expect(r.generation).toBe(1);
    expect(await waitFor(() => value(p) === 5 && p.server.pluginMetrics()[0]!.values !== before, 5_000), dump(p.logs)).toBe(true);
    expect(p.server.pluginMetrics()).toHaveLength(1);
  }, 30_000);
});
