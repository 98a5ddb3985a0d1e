// A plugin's own metrics (wit/metrics.wit) under simulation: the scenario
// reads them while it runs (net.metric, net.metrics) and the result has them
// at the end. The http plugin counts its responses by status class: the
// counts must be those of the status lines its clients received, at every
// step, the same for the same seed; with `--config metrics=0` it defines
// none. A histogram's sample (MetricsStore.samples) has cumulative buckets,
// its count and its sum.
import { describe, it, expect, beforeAll } from 'vitest';
import { prepareSimulation, runSimulation, type Net, type SimPlugin } from '../../dist/host/sim/simulate.js';
import { MetricsStore, metricValuesBuffer } from '../../dist/host/sandbox/metrics.js';
import { HTTP } from './helpers.js';

let http: SimPlugin;
beforeAll(async () => {
  http = await prepareSimulation(HTTP);
});

const REQUESTS = [
  'GET / HTTP/1.1\r\nHost: sim\r\n\r\n',
  'GET /missing HTTP/1.1\r\nHost: sim\r\n\r\n',
  'POST /echo HTTP/1.1\r\nHost: sim\r\nContent-Length: 2\r\n\r\nhi',
  'GET / HTTP/9.9\r\nHost: sim\r\n\r\n',
  'no request line at all\r\n\r\n',
];

/** Status classes of the responses in `text` ("2xx": n, ...). */
function classes(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/HTTP\/1\.1 (\d)\d\d /g)) out[`${m[1]}xx`] = (out[`${m[1]}xx`] ?? 0) + 1;
  return out;
}

/** One client per request, one after another; after each, the metrics must match what the clients got. */
function scenario(seen: Record<string, number>[]) {
  return function* (net: Net) {
    let received = '';
    for (const request of REQUESTS) {
      const c = net.connect();
      c.write(`${request}`);
      if (!(yield* net.until(() => /\r\n\r\n/.test(c.text) || c.ended, 5_000)))
        throw new Error(`no response to ${JSON.stringify(request)}`);
      yield; // the plugin reports before its next wait
      received += c.text;
      const want = classes(received);
      const got: Record<string, number> = {};
      for (const k of ['2xx', '3xx', '4xx', '5xx']) {
        const v = net.metric('requests_total', { class: k });
        if (v === undefined) throw new Error(`no requests_total{class="${k}"} series`);
        if (v > 0) got[k] = v;
      }
      if (JSON.stringify(got) !== JSON.stringify(want))
        throw new Error(`metrics ${JSON.stringify(got)}, responses ${JSON.stringify(want)}`);
      seen.push(got);
      c.close();
      yield;
    }
  };
}

describe('plugin metrics under simulation', () => {
  it("the http plugin's requests_total follows the responses its clients got, step by step, the same for the same seed", () => {
    const seen: Record<string, number>[] = [];
    const r = runSimulation(http, { scenario: scenario(seen), seed: 7 });
    expect(r.failure).toBeNull();
    expect(seen).toHaveLength(REQUESTS.length);
    // 200, 404, 200, then two refused requests (505, 400).
    expect(seen.at(-1)).toEqual({ '2xx': 2, '4xx': 2, '5xx': 1 });
    expect(r.metrics.map((m) => [m.name, m.kind, m.labels.class, m.value])).toEqual([
      ['requests_total', 'counter', '2xx', 2],
      ['requests_total', 'counter', '3xx', 0],
      ['requests_total', 'counter', '4xx', 2],
      ['requests_total', 'counter', '5xx', 1],
    ]);
    expect(r.metrics[0]!.help).toBe('HTTP responses by status class');
    expect(r.metrics[0]!.sum).toBeUndefined();
    const again = runSimulation(http, { scenario: scenario([]), seed: 7 });
    expect(again.metrics).toEqual(r.metrics);
    expect(again.transcript).toBe(r.transcript);
  });

  it('net.metric is undefined for a series that does not exist; --config metrics=0 defines none', () => {
    const asked: (number | undefined)[] = [];
    const r = runSimulation(http, {
      config: 'metrics=0',
      scenario: function* (net) {
        const c = net.connect();
        c.write(REQUESTS[0]!);
        yield* net.until(() => c.text.includes('\r\n\r\n'), 5_000);
        yield;
        asked.push(net.metric('requests_total', { class: '2xx' }), net.metric('requests_total'));
        asked.push(net.metrics().length);
      },
    });
    expect(r.failure).toBeNull();
    expect(asked).toEqual([undefined, undefined, 0]);
    expect(r.metrics).toEqual([]);
  });

  it('a histogram sample: cumulative buckets, count and sum', () => {
    const store = new MetricsStore(8, new Float64Array(metricValuesBuffer(8)), { defined() {}, seriesAdded() {}, capReached() {} });
    const m = store.define(2, 'latency_seconds', 'How long', ['route'], [0.1, 1]);
    const s = store.series(m, ['/a']);
    // Three updates as the WIT lays them out: u32 series at 0, f64 value at 8, 16 bytes each.
    const mem = new ArrayBuffer(48);
    const u32 = new Uint32Array(mem);
    const f64 = new Float64Array(mem);
    [0.05, 0.5, 3].forEach((v, i) => {
      u32[4 * i] = s;
      f64[2 * i + 1] = v;
    });
    expect(store.report(u32, f64, 0, 3)).toBe(0);
    expect(store.samples()).toEqual([
      {
        name: 'latency_seconds',
        kind: 'histogram',
        help: 'How long',
        labels: { route: '/a' },
        value: 3,
        sum: 3.55,
        buckets: [
          { le: 0.1, count: 1 },
          { le: 1, count: 2 },
        ],
      },
    ]);
  });
});
