// The series cap of plugin-defined metrics (policy metricSeries,
// `--metric-series`): a raw-WAT plugin defines series past it. Each one past
// the cap gets `limit` (a histogram's series counting once, a series asked
// for again costing nothing), metrics past it too; the host says so once,
// and the instance keeps serving. At 0 a plugin can define nothing.
import { describe, it, expect, afterEach } from 'vitest';
import { cleanUp, dump, host, waitFor } from '../helpers/hostile.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const RET = 1200;
const OUT = 8000;
// Strings, and list<string> cells (ptr, len) for one label name or value.
const STRINGS: Record<string, [at: number, text: string]> = {
  c: [4000, 'c_total'],
  h: [4010, 'h_seconds'],
  g: [4020, 'g'],
  g2: [4024, 'g2'],
  k: [4030, 'k'],
  a: [4034, 'a'],
  b: [4036, 'b'],
  d: [4038, 'd'],
  e: [4040, 'e'],
};
const LIST = (s: keyof typeof STRINGS) => 4100 + 8 * Object.keys(STRINGS).indexOf(s);
const str = (s: keyof typeof STRINGS) => `(i32.const ${STRINGS[s]![0]}) (i32.const ${STRINGS[s]![1].length})`;

const define = (kind: number, name: keyof typeof STRINGS, label: boolean, buckets: boolean, keep: number) =>
  `(call $mdefine (i32.const ${kind}) ${str(name)} (i32.const 0) (i32.const 0) (i32.const ${LIST('k')}) (i32.const ${label ? 1 : 0})
     (i32.const 4200) (i32.const ${buckets ? 1 : 0}) (i32.const ${RET})) (call $char)
   (i32.store (i32.const ${keep}) (i32.load (i32.const ${RET + 4})))`;
const series = (metricAt: number, value: keyof typeof STRINGS | null) =>
  `(call $mseries (i32.load (i32.const ${metricAt})) (i32.const ${value ? LIST(value) : 8}) (i32.const ${value ? 1 : 0}) (i32.const ${RET})) (call $char)`;

// [call, result character at cap 3]
const CALLS: [string, string][] = [
  [define(0, 'c', true, false, 7000), '+'],
  [series(7000, 'a'), '+'],
  [series(7000, 'b'), '+'],
  [define(2, 'h', false, true, 7004), '+'],
  [series(7004, null), '+'], // the third series: a histogram counts once
  [series(7000, 'd'), 'i'], // the fourth: over the cap
  [series(7000, 'a'), '+'], // one that exists costs nothing
  [define(1, 'g', false, false, 7008), '+'], // the third metric
  [series(7008, null), 'i'],
  [define(1, 'g2', false, false, 7012), 'i'], // a fourth metric: the cap bounds metrics too
  [series(7000, 'e'), 'i'],
];

function capPlugin(): string {
  const data = Object.values(STRINGS)
    .map(([at, text]) => `(data (i32.const ${at}) "${text}")`)
    .join(' ');
  const lists = Object.keys(STRINGS)
    .map(
      (s) =>
        `(i32.store (i32.const ${LIST(s)}) (i32.const ${STRINGS[s]![0]})) (i32.store (i32.const ${LIST(s) + 4}) (i32.const ${STRINGS[s]![1].length}))`,
    )
    .join(' ');
  return `(module
  ${IMPORTS}
  ${runtime()}
  ${data}
  (global $out (mut i32) (i32.const ${OUT}))
  (func $char
    (i32.store8 (global.get $out)
      (if (result i32) (i32.load8_u (i32.const ${RET})) (then (i32.add (i32.const 97) (i32.load8_u (i32.const ${RET + 4})))) (else (i32.const 43))))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))
  ${listenThen(
    `${lists} (f64.store (i32.const 4200) (f64.const 0.5))
    ${CALLS.map(([c]) => c).join('\n    ')}
    (call $log (i32.const 2) (i32.const ${OUT}) (i32.sub (global.get $out) (i32.const ${OUT})))
    (loop $forever (call $wait (i32.const 16) (i32.const 1) (i32.const 50) (i32.const 2048)) (br $forever))`,
    { loop: false },
  )})`;
}

const CAP_LINE = /^metrics: series cap reached \(metric-series (\d+)\)/;

describe('the metric-series cap', () => {
  it('refuses series and metrics past it with limit, says so once, and the instance serves on', async () => {
    const p = await host(await watPlugin('metrics-cap', capPlugin()), { policy: { metricSeries: 3 } });
    const line = await p.line(/^[+a-k]+$/);
    expect(line.message, dump(p.logs)).toBe(CALLS.map(([, c]) => c).join(''));
    expect(p.count(CAP_LINE), dump(p.logs)).toBe(1);
    expect(p.lines(CAP_LINE)[0]!.level).toBe('warn');
    const [m] = p.server.pluginMetrics();
    expect(m!.series.map((s) => s.values)).toEqual([['a'], ['b'], []]);
    const waits = p.server.stats()[0]!.waits;
    expect(await waitFor(() => p.server.stats()[0]!.waits > waits + 2, 5_000)).toBe(true);
    expect(p.server.stats()[0]!.restarts).toBe(0);
  }, 30_000);

  it('at 0 refuses every definition', async () => {
    const p = await host(await watPlugin('metrics-cap', capPlugin()), { policy: { metricSeries: 0 } });
    const line = await p.line(/^[+a-k]+$/);
    // Every define says limit; a series of a metric that was never defined is bad-handle.
    expect(line.message).toBe(CALLS.map(([c]) => (c.includes('$mdefine') ? 'i' : 'b')).join(''));
    expect(p.count(CAP_LINE)).toBe(1);
    expect(p.server.pluginMetrics()).toEqual([]);
  }, 30_000);
});
