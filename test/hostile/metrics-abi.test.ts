// A plugin written in raw WAT calling wit/metrics.wit with shapes the SDK
// never emits.
//
// (1) Arguments the canonical ABI makes a trap (a string or list outside
// memory, a list whose length wraps, a misaligned list, a kind out of
// range, a misaligned return area): each a trap of its own instance naming
// what was wrong, restarted; an echo neighbour keeps answering.
//
// (2) Arguments the interface refuses with an error code (bad names and
// label names, reserved labels, bad buckets, overlong strings, too many
// labels, invalid UTF-8, unknown and forged ids, NaN, infinities and
// negative counter deltas, too many updates): one instance makes every call
// once, writes one character per result (`+` ok, `a` + the error-code
// otherwise) and logs them; it keeps serving, and the values it reported
// are what the host holds.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, host, waitFor } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';
import { SERIES_SLOTS } from '../../host/sandbox/metrics.js';

afterEach(cleanUp);

// Memory used by the calls (listenThen's listen result is at 1024).
const RET = 1200; // every call's return area (result<u32, error-code>: 8 bytes, align 4)
const NAME = 4000; // "ok_total"
const HELP = 4010; // "h"
const CLASS = 4020; // "class"
const LABELS = 4032; // list<string>: ("class")
const PLUGIN = 4040; // "plugin"
const LABELS_PLUGIN = 4048; // list<string>: ("plugin")
const BAD_NAME = 4060; // "1bad"
const LE = 4070; // "le"
const LABELS_LE = 4080; // list<string>: ("le")
const BUCKETS = 4096; // f64 [0.1, 1]
const BUCKETS_DOWN = 4112; // f64 [1, 0.1]
const BUCKETS_NAN = 4128; // f64 [NaN]
const LAT = 4140; // "lat"
const V2XX = 4150; // "2xx"
const VALUES = 4160; // list<string>: ("2xx")
const LONG_VALUES = 4168; // list<string>: (129 bytes of 'a')
const G = 4180; // "g"
const NOT_UTF8 = 4184; // "\ff"
const C2 = 4186; // "c2"
const UPDATES = 4200; // list<update> built before each report
const AAAA = 6000; // 300 bytes of 'a'
const OUT = 8000; // the result characters
const IDS = 7000; // metric ids: +0 counter, +4 histogram, +8 gauge

const data = `
  (data (i32.const ${NAME}) "ok_total")
  (data (i32.const ${HELP}) "h")
  (data (i32.const ${CLASS}) "class")
  (data (i32.const ${PLUGIN}) "plugin")
  (data (i32.const ${BAD_NAME}) "1bad")
  (data (i32.const ${LE}) "le")
  (data (i32.const ${LAT}) "lat")
  (data (i32.const ${V2XX}) "2xx")
  (data (i32.const ${G}) "g")
  (data (i32.const ${NOT_UTF8}) "\\ff")
  (data (i32.const ${C2}) "c2")
`;

/** A pair (ptr, len) stored at `at` (a list<string> element). */
const pair = (at: number, ptr: number, len: number) =>
  `(i32.store (i32.const ${at}) (i32.const ${ptr})) (i32.store (i32.const ${at + 4}) (i32.const ${len}))`;

const setup = `
  (drop (memory.grow (i32.const 20)))
  (memory.fill (i32.const ${AAAA}) (i32.const 97) (i32.const 300))
  ${pair(LABELS, CLASS, 5)} ${pair(LABELS_PLUGIN, PLUGIN, 6)} ${pair(LABELS_LE, LE, 2)}
  ${pair(VALUES, V2XX, 3)} ${pair(LONG_VALUES, AAAA, 129)}
  (f64.store (i32.const ${BUCKETS}) (f64.const 0.1)) (f64.store (i32.const ${BUCKETS + 8}) (f64.const 1))
  (f64.store (i32.const ${BUCKETS_DOWN}) (f64.const 1)) (f64.store (i32.const ${BUCKETS_DOWN + 8}) (f64.const 0.1))
  (f64.store (i32.const ${BUCKETS_NAN}) (f64.const nan))
`;

/** define(kind, name, help, labels, buckets) then its result character (`keep`: store the id at that address). */
function define(
  kind: number,
  name: [number, number],
  help: [number, number],
  labels: [number, number],
  buckets: [number, number],
  keep?: number,
) {
  return `(call $mdefine (i32.const ${kind}) (i32.const ${name[0]}) (i32.const ${name[1]}) (i32.const ${help[0]}) (i32.const ${help[1]})
      (i32.const ${labels[0]}) (i32.const ${labels[1]}) (i32.const ${buckets[0]}) (i32.const ${buckets[1]}) (i32.const ${RET}))
    (call $char32)${keep === undefined ? '' : ` (i32.store (i32.const ${keep}) (i32.load (i32.const ${RET + 4})))`}`;
}
const series = (metric: string, values: [number, number]) =>
  `(call $mseries ${metric} (i32.const ${values[0]}) (i32.const ${values[1]}) (i32.const ${RET})) (call $char32)`;
/** report(updates): each (series, value as WAT f64 literal). */
function report(updates: [string, string][], len = updates.length) {
  const stores = updates
    .map(([s, v], i) => `(i32.store (i32.const ${UPDATES + 16 * i}) ${s}) (f64.store (i32.const ${UPDATES + 16 * i + 8}) (f64.const ${v}))`)
    .join(' ');
  return `${stores} (call $mreport (i32.const ${UPDATES}) (i32.const ${len}) (i32.const ${RET})) (call $char0)`;
}
const id = (at: number) => `(i32.load (i32.const ${at}))`;
const NONE: [number, number] = [8, 0];

// [call, expected character]
const CALLS: [string, string][] = [
  [define(0, [NAME, 8], [HELP, 1], [LABELS, 1], NONE, IDS), '+'],
  [define(0, [NAME, 8], [HELP, 1], [LABELS, 1], NONE), 'j'], // the same name again
  [define(0, [BAD_NAME, 4], [HELP, 1], NONE, NONE), 'j'],
  [define(0, [C2, 2], [HELP, 1], [LABELS_PLUGIN, 1], NONE), 'j'], // a label the host adds
  [define(2, [LAT, 3], [HELP, 1], [LABELS_LE, 1], [BUCKETS, 2]), 'j'], // le on a histogram
  [define(2, [LAT, 3], [HELP, 1], NONE, [BUCKETS_DOWN, 2]), 'j'],
  [define(2, [LAT, 3], [HELP, 1], NONE, [BUCKETS_NAN, 1]), 'j'],
  [define(2, [LAT, 3], [HELP, 1], NONE, NONE), 'j'], // a histogram without buckets
  [define(0, [C2, 2], [HELP, 1], NONE, [BUCKETS, 1]), 'j'], // buckets on a counter
  [define(2, [LAT, 3], [HELP, 1], NONE, [BUCKETS, 2], IDS + 4), '+'],
  [define(1, [AAAA, 101], [HELP, 1], NONE, NONE), 'j'], // a name over 100 bytes
  [define(1, [G, 1], [AAAA, 201], NONE, NONE), 'j'], // help over 200 bytes
  [define(1, [G, 1], [HELP, 1], [LABELS, 9], NONE), 'j'], // 9 labels (the rest are empty strings)
  [define(1, [G, 1], [NOT_UTF8, 1], NONE, NONE), 'j'], // help not UTF-8
  [define(1, [G, 1], [HELP, 1], NONE, NONE, IDS + 8), '+'],
  [series(id(IDS), [VALUES, 1]), '+'], // series 1
  [series(id(IDS), NONE), 'j'], // one value short
  [series('(i32.const 999)', NONE), 'b'],
  [series('(i32.const 0)', NONE), 'b'],
  [series('(i32.const -1)', NONE), 'b'],
  [series(id(IDS), [VALUES, 1]), '+'], // the same series
  [series(id(IDS + 4), NONE), '+'], // series 2, the histogram
  [series(id(IDS + 8), NONE), '+'], // series 3, the gauge
  [series(id(IDS), [LONG_VALUES, 1]), 'j'], // a value over 128 bytes
  [
    report([
      ['(i32.const 1)', '5'],
      ['(i32.const 2)', '0.5'],
      ['(i32.const 3)', '-7'],
    ]),
    '+',
  ],
  [report([['(i32.const 1)', '-1']]), 'j'], // a counter going down
  [report([['(i32.const 1)', 'nan']]), 'j'],
  [report([['(i32.const 3)', 'inf']]), 'j'],
  [report([['(i32.const 2)', '-inf']]), 'j'],
  [report([['(i32.const 77)', '1']]), 'b'],
  [report([['(i32.const 0)', '1']]), 'b'],
  [report([], 65_537), 'i'], // more updates than one report may carry: none applied
  [
    report([
      ['(i32.const 1)', '2'],
      ['(i32.const 99)', '1'],
      ['(i32.const 1)', '3'],
    ]),
    'b',
  ], // the bad one skipped, the others applied
  [report([], 0), '+'],
];

function codesPlugin(): string {
  const calls = CALLS.map(([c]) => c).join('\n    ');
  return `(module
  ${IMPORTS}
  ${runtime(64)}
  ${data}
  (global $out (mut i32) (i32.const ${OUT}))
  ;; result<u32, error-code> and result<_, error-code> at RET: '+' for ok, 'a' + the code.
  (func $char32
    (i32.store8 (global.get $out)
      (if (result i32) (i32.load8_u (i32.const ${RET})) (then (i32.add (i32.const 97) (i32.load8_u (i32.const ${RET + 4})))) (else (i32.const 43))))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))
  (func $char0
    (i32.store8 (global.get $out)
      (if (result i32) (i32.load8_u (i32.const ${RET})) (then (i32.add (i32.const 97) (i32.load8_u (i32.const ${RET + 1})))) (else (i32.const 43))))
    (global.set $out (i32.add (global.get $out) (i32.const 1))))
  ${listenThen(
    `${setup}
    ${calls}
    (call $log (i32.const 2) (i32.const ${OUT}) (i32.sub (global.get $out) (i32.const ${OUT})))
    (loop $forever (call $wait (i32.const 16) (i32.const 1) (i32.const 50) (i32.const 2048)) (br $forever))`,
    { loop: false },
  )})`;
}

// Traps: [call, the trap's message].
const TRAPS: [call: string, message: string][] = [
  [
    `(call $mdefine (i32.const 0) (i32.const 0xffffff00) (i32.const 16) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const ${RET}))`,
    'out-of-bounds memory access: 16 bytes at 4294967040',
  ],
  [
    `(call $mdefine (i32.const 3) (i32.const ${NAME}) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const ${RET}))`,
    'invalid metric kind 3',
  ],
  [
    `(call $mdefine (i32.const 0) (i32.const ${NAME}) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const ${LABELS + 1}) (i32.const 1) (i32.const 8) (i32.const 0) (i32.const ${RET}))`,
    `misaligned label list at ${LABELS + 1} (needs 4)`,
  ],
  [
    `${pair(4400, 0xfffffff0, 64)} (call $mdefine (i32.const 0) (i32.const ${NAME}) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 4400) (i32.const 1) (i32.const 8) (i32.const 0) (i32.const ${RET}))`,
    'out-of-bounds memory access: 64 bytes at 4294967280',
  ],
  [
    `(call $mdefine (i32.const 2) (i32.const ${NAME}) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 4100) (i32.const 2) (i32.const ${RET}))`,
    'misaligned bucket list at 4100 (needs 8)',
  ],
  [
    '(call $mseries (i32.const 1) (i32.const 16) (i32.const 0x10000000) (i32.const 1200))',
    'out-of-bounds memory access: 2147483648 bytes at 16',
  ],
  ['(call $mreport (i32.const 4204) (i32.const 1) (i32.const 1200))', 'misaligned update list at 4204 (needs 8)'],
  ['(call $mreport (i32.const 4200) (i32.const 0x0fffffff) (i32.const 1200))', 'out-of-bounds memory access: 4294967280 bytes at 4200'],
  [
    `(call $mdefine (i32.const 0) (i32.const ${NAME}) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 1201))`,
    'misaligned return area at 1201',
  ],
];

function trapPlugin(): string {
  const blocks = TRAPS.map((_, i) => `$c${i}`);
  let dispatch = `(br_table ${blocks.join(' ')} (local.get $inst))`;
  TRAPS.forEach(([call], i) => {
    dispatch = `(block $c${i} ${dispatch}) ${call} (br $done)`;
  });
  return `(module
  ${IMPORTS}
  ${runtime()}
  ${data}
  ${listenThen(`(block $done ${dispatch})`, { loop: false })})`;
}

const escapeRegex = (s: string) => s.replace(/[.()']/g, '\\$&');

describe('a plugin calling metrics with hostile arguments', () => {
  it(`gets an error code for each of ${CALLS.length} refused or accepted calls, keeps serving, and the host holds what it reported`, async () => {
    const plugin = await watPlugin('metrics-codes', codesPlugin());
    const neighbour = await Neighbour.start();
    const p = await host(plugin);
    const line = await p.line(/^[+a-k]+$/);
    expect(line.origin).toBe('guest');
    expect(line.message, dump(p.logs)).toBe(CALLS.map(([, c]) => c).join(''));

    // What it reported: the counter 5 + 2 + 3 (the bad updates skipped), one observation of 0.5, the gauge at -7.
    const [m] = p.server.pluginMetrics();
    expect(m!.series.map((s) => [s.id, s.metric, s.values])).toEqual([
      [1, 1, ['2xx']],
      [2, 2, []],
      [3, 3, []],
    ]);
    expect([...m!.metrics.values()].map((d) => [d.kind, d.name, d.labels, d.buckets])).toEqual([
      ['counter', 'ok_total', ['class'], []],
      ['histogram', 'lat', [], [0.1, 1]],
      ['gauge', 'g', [], []],
    ]);
    const v = m!.values;
    expect(v[0]).toBe(10);
    expect([...v.subarray(SERIES_SLOTS, SERIES_SLOTS + 3)]).toEqual([0, 1, 0]);
    expect(v[2 * SERIES_SLOTS - 1]).toBe(0.5);
    expect(v[2 * SERIES_SLOTS]).toBe(-7);

    // Still serving after it all: waiting, never restarted, nothing logged by the host about it.
    const waits = p.server.stats()[0]!.waits;
    expect(await waitFor(() => p.server.stats()[0]!.waits > waits + 2, 5_000)).toBe(true);
    expect(p.server.stats()[0]!.restarts).toBe(0);
    expect(
      p.logs.filter((l) => l.origin === 'host' && l.level !== 'info' && l.level !== 'debug'),
      dump(p.logs),
    ).toEqual([]);
    expect(await neighbour.finish()).toBeGreaterThan(0);
    expect(neighbour.failures).toEqual([]);
  }, 60_000);

  it(`traps naming what was wrong, for each of ${TRAPS.length} cases the canonical ABI makes a trap, and is restarted; its neighbour keeps answering`, async () => {
    const plugin = await watPlugin('metrics-abi', trapPlugin());
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(plugin, { workers: TRAPS.length });
    const ends = (i: number) => p.logs.filter((l) => l.instance === i && /^trapped: /.test(l.message));
    expect(await waitFor(() => TRAPS.every((_, i) => ends(i).length >= 2), 30_000), dump(p.logs)).toBe(true);
    TRAPS.forEach(([, message], i) => {
      for (const l of ends(i)) expect(l.message, `instance ${i}`).toMatch(new RegExp(`^trapped: ${escapeRegex(message)}`));
    });
    expect(p.server.failed).toBeNull();
    const cause = new RegExp(`^trapped: (${TRAPS.map(([, m]) => escapeRegex(m)).join('|')})`);
    await expectContained({ hostile: p, neighbour, base, cause, minEnds: 2 * TRAPS.length });
  }, 90_000);
});
