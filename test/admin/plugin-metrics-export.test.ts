/**
 * How /metrics writes plugin-defined metrics, from definitions and shared
 * values as the supervisor holds them (PluginServer.pluginMetrics), without
 * a plugin: the `<plugin>_<name>` naming (a plugin name's other characters
 * become `_`), the labels (the plugin's, then plugin and instance) and their
 * escaping, a histogram's cumulative buckets, +Inf, sum and count, and what
 * is left out (the host's `wasmux_` namespace, a definition that disagrees
 * with the first of its name, a name clashing with a histogram's samples).
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { type AdminServer, type PluginServer, serveAdmin } from '../../dist/host/index.js';
import type { InstanceMetrics } from '../../dist/host/supervisor/plugin-server.js';
import { type MetricDef, SERIES_SLOTS, type SeriesDef } from '../../dist/host/sandbox/metrics.js';

let admin: AdminServer | null = null;
afterEach(async () => {
  await admin?.close();
  admin = null;
});

/** One instance's metrics: definitions, series, and the values at each series' slots. */
function instance(index: number, defs: Omit<MetricDef, 'id'>[], series: (SeriesDef & { v: number[] })[]): InstanceMetrics {
  const values = new Float64Array(series.length * SERIES_SLOTS);
  for (const s of series) values.set(s.v, (s.id - 1) * SERIES_SLOTS);
  return {
    instance: index,
    metrics: new Map(defs.map((d, i) => [i + 1, { id: i + 1, ...d }])),
    series: series.map(({ v: _, ...s }) => s),
    values,
  };
}

/** A histogram series' slots: counts per bucket (then +Inf), not cumulative, and the sum in the last slot. */
function histogramSlots(counts: number[], sum: number): number[] {
  const v = new Array<number>(SERIES_SLOTS).fill(0);
  counts.forEach((c, i) => (v[i] = c));
  v[SERIES_SLOTS - 1] = sum;
  return v;
}

/** Just what the admin endpoint reads of a plugin server. */
function fakeServer(name: string, metrics: InstanceMetrics[]): PluginServer {
  return {
    name,
    state: 'serving',
    generation: 0,
    stats: () => [],
    reloadStats: () => ({ done: 0, failed: 0, handoversDone: 0, handoversFailed: 0 }),
    pluginMetrics: () => metrics,
  } as unknown as PluginServer;
}

describe('/metrics, plugin-defined families', () => {
  it('names, labels, escapes and histograms them as Prometheus reads them, leaving out what would clash', async () => {
    const counter: Omit<MetricDef, 'id'> = {
      kind: 'counter',
      name: 'jobs_total',
      help: 'Jobs\ndone "ok"',
      labels: ['outcome'],
      buckets: [],
    };
    const histogram: Omit<MetricDef, 'id'> = { kind: 'histogram', name: 'lat', help: 'Latency', labels: [], buckets: [0.1, 1] };
    const servers = [
      fakeServer('my-app', [
        instance(
          0,
          [counter, histogram, { kind: 'gauge', name: 'lat_count', help: 'clashes with lat', labels: [], buckets: [] }],
          [
            { id: 1, metric: 1, values: ['a "b"\nc\\'], v: [3] },
            { id: 2, metric: 2, values: [], v: histogramSlots([2, 0, 1], 5.5) },
            { id: 3, metric: 3, values: [], v: [1] },
          ],
        ),
        // Instance 1 defined jobs_total as a gauge: left out, instance 0 came first.
        instance(1, [{ ...counter, kind: 'gauge' }], [{ id: 1, metric: 1, values: ['x'], v: [9] }]),
      ]),
    ];
    // A plugin named "wasmux" would write into the host's namespace: left out.
    servers.push(fakeServer('wasmux', [instance(0, [counter], [{ id: 1, metric: 1, values: ['y'], v: [1] }])]));
    admin = await serveAdmin({ host: '127.0.0.1', port: 0, servers: () => servers, expected: 2 });
    const text = await (await fetch(`http://127.0.0.1:${admin.port}/metrics`)).text();

    expect(text).toContain('# HELP my_app_jobs_total Jobs\\ndone "ok"\n# TYPE my_app_jobs_total counter\n');
    expect(text).toContain('my_app_jobs_total{plugin="my-app",instance="0",outcome="a \\"b\\"\\nc\\\\"} 3\n');
    expect(text).not.toContain('instance="1",outcome="x"');
    expect(text).not.toContain('wasmux_jobs_total');
    expect(text).not.toContain('# HELP my_app_lat_count');
    expect(text).toContain(
      [
        '# TYPE my_app_lat histogram',
        'my_app_lat_bucket{plugin="my-app",instance="0",le="0.1"} 2',
        'my_app_lat_bucket{plugin="my-app",instance="0",le="1"} 2',
        'my_app_lat_bucket{plugin="my-app",instance="0",le="+Inf"} 3',
        'my_app_lat_sum{plugin="my-app",instance="0"} 5.5',
        'my_app_lat_count{plugin="my-app",instance="0"} 3',
      ].join('\n'),
    );
    // The whole text parses.
    const names = parsePrometheusTextFormat(text).map((f) => f.name);
    expect(names).toContain('my_app_jobs_total');
    expect(names).toContain('my_app_lat');
  });
});
