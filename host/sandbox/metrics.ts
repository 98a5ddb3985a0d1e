/**
 * Plugin-defined metrics (wit/metrics.wit): the rules of an instance's
 * metrics, apart from how the calls are encoded. Definitions are checked
 * here and told to the supervisor (rare: one message each); values live in
 * a Float64Array over shared memory that the supervisor reads when the
 * admin endpoint is scraped (supervisor/admin.ts): an update is a store,
 * never a message.
 *
 * Values, per series `s` (1-based), at (s - 1) * SERIES_SLOTS: a counter's
 * or gauge's value in the first slot; a histogram's count per bucket (its
 * bounds in order, then +Inf), not cumulative, and its sum in the last
 * slot (the count is the buckets' total).
 *
 * Results are numbers, as for the instance's host: an id, 0, or
 * `fail(ErrorCode)`. Nothing here throws for what the guest passed.
 */
import { ErrorCode } from '../generated/contract.js';
import { fail } from '../backends/backend.js';

/** Metrics one instance may define. */
export const METRICS_MAX = 64;
export const METRIC_NAME_MAX = 100;
export const METRIC_HELP_MAX = 200;
export const METRIC_LABELS_MAX = 8;
export const LABEL_NAME_MAX = 64;
export const LABEL_VALUE_MAX = 128;
/** A histogram's bounds at most (the host adds +Inf). */
export const BUCKETS_MAX = 30;
/** Updates one report may carry. */
export const REPORT_MAX = 65_536;
/** f64 slots per series: a histogram's buckets, +Inf, and its sum. */
export const SERIES_SLOTS = BUCKETS_MAX + 2;
/** Label names the host adds to every series. */
export const RESERVED_LABELS: readonly string[] = ['plugin', 'instance'];

export type MetricKind = 'counter' | 'gauge' | 'histogram';
export const KIND_OF: readonly MetricKind[] = ['counter', 'gauge', 'histogram'];

/** A metric as defined (what the supervisor is told once). */
export interface MetricDef {
  id: number;
  kind: MetricKind;
  name: string;
  help: string;
  labels: string[];
  buckets: number[];
}

/** A series: its metric and label values (what the supervisor is told once). */
export interface SeriesDef {
  id: number;
  metric: number;
  values: string[];
}

/** Where definitions go: the supervisor (a message each), and the cap's notice. */
export interface MetricsSink {
  defined(def: MetricDef): void;
  seriesAdded(s: SeriesDef): void;
  /** The cap refused a series or a metric (told each time; the host logs it once). */
  capReached(cap: number): void;
}

/**
 * One observation `v` into a histogram laid out as counts per bound of
 * `bounds` from `at`, then +Inf (not cumulative), and its sum at `sumAt`:
 * the layout of a plugin's histogram series here and of the host's
 * loop-turn histogram (shared.ts STAT_TURN).
 */
export function observe(values: Float64Array, at: number, bounds: readonly number[], sumAt: number, v: number): void {
  let b = 0;
  while (b < bounds.length && v > bounds[b]!) b++;
  values[at + b]!++;
  values[sumAt]! += v;
}

/** The shared values of an instance with a cap of `cap` series. */
export function metricValuesBuffer(cap: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, cap * SERIES_SLOTS) * 8);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Whether `name` is a metric name Prometheus accepts (and of a bounded length). */
export function validMetricName(name: string): boolean {
  return name.length > 0 && name.length <= METRIC_NAME_MAX && NAME.test(name);
}

/** Whether `name` may be one of a plugin's label names for a metric of `kind`. */
export function validLabelName(name: string, kind: MetricKind): boolean {
  return (
    name.length > 0 &&
    name.length <= LABEL_NAME_MAX &&
    LABEL.test(name) &&
    !name.startsWith('__') &&
    !RESERVED_LABELS.includes(name) &&
    !(kind === 'histogram' && name === 'le')
  );
}

/** One series as plain data (MetricsStore.samples): what a simulation's scenario and result show. */
export interface MetricSample {
  /** The name the plugin defined (without the `<plugin>_` prefix the admin endpoint adds). */
  name: string;
  kind: MetricKind;
  help: string;
  /** The plugin's labels, by name. */
  labels: Record<string, string>;
  /** A counter's or gauge's value; a histogram's count of observations. */
  value: number;
  /** Histograms: the sum of the observations. */
  sum?: number;
  /** Histograms: per bound, the observations at or below it (cumulative, as Prometheus's `le`). */
  buckets?: { le: number; count: number }[];
}

interface Metric {
  def: MetricDef;
  /** Series by their label values (as JSON). */
  series: Map<string, number>;
}

export class MetricsStore {
  private readonly metrics: Metric[] = [];
  private readonly names = new Set<string>();
  /** Per series id - 1: its metric's index, and (histograms) its bounds. */
  private readonly seriesMetric: number[] = [];
  private readonly seriesBounds: (readonly number[] | null)[] = [];
  /** Per series id - 1: whether it is a counter's (report adds), else a gauge's (report sets) when not a histogram's. */
  private readonly seriesAdds: boolean[] = [];

  constructor(
    /** Series at most (policy metricSeries). */
    readonly cap: number,
    /** The shared values (metricValuesBuffer(cap)). */
    readonly values: Float64Array,
    private readonly sink: MetricsSink,
  ) {}

  /** How many series exist. */
  get seriesCount(): number {
    return this.seriesMetric.length;
  }

  define(kind: number, name: string, help: string, labels: readonly string[], buckets: ArrayLike<number>): number {
    const k = KIND_OF[kind];
    if (k === undefined) return fail(ErrorCode.Invalid);
    if (!validMetricName(name) || this.names.has(name)) return fail(ErrorCode.Invalid);
    if (Buffer.byteLength(help) > METRIC_HELP_MAX) return fail(ErrorCode.Invalid);
    if (labels.length > METRIC_LABELS_MAX || new Set(labels).size !== labels.length) return fail(ErrorCode.Invalid);
    for (const l of labels) if (!validLabelName(l, k)) return fail(ErrorCode.Invalid);
    if (k === 'histogram') {
      if (buckets.length < 1 || buckets.length > BUCKETS_MAX) return fail(ErrorCode.Invalid);
      for (let i = 0; i < buckets.length; i++) {
        const b = buckets[i]!;
        if (!Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!)) return fail(ErrorCode.Invalid);
      }
    } else if (buckets.length !== 0) {
      return fail(ErrorCode.Invalid);
    }
    if (this.metrics.length >= Math.min(METRICS_MAX, this.cap)) {
      this.sink.capReached(this.cap);
      return fail(ErrorCode.Limit);
    }
    const def: MetricDef = { id: this.metrics.length + 1, kind: k, name, help, labels: [...labels], buckets: Array.from(buckets) };
    this.metrics.push({ def, series: new Map() });
    this.names.add(name);
    this.sink.defined(def);
    return def.id;
  }

  series(m: number, values: readonly string[]): number {
    const metric = this.metrics[(m >>> 0) - 1];
    if (metric === undefined) return fail(ErrorCode.BadHandle);
    if (values.length !== metric.def.labels.length) return fail(ErrorCode.Invalid);
    for (const v of values) if (Buffer.byteLength(v) > LABEL_VALUE_MAX) return fail(ErrorCode.Invalid);
    const key = JSON.stringify(values);
    const known = metric.series.get(key);
    if (known !== undefined) return known;
    if (this.seriesMetric.length >= this.cap) {
      this.sink.capReached(this.cap);
      return fail(ErrorCode.Limit);
    }
    this.seriesMetric.push(m - 1);
    this.seriesBounds.push(metric.def.kind === 'histogram' ? metric.def.buckets : null);
    this.seriesAdds.push(metric.def.kind === 'counter');
    const id = this.seriesMetric.length;
    metric.series.set(key, id);
    this.sink.seriesAdded({ id, metric: m, values: [...values] });
    return id;
  }

  /** Every series and its value now, in the order defined. */
  samples(): MetricSample[] {
    const out: MetricSample[] = [];
    for (const { def, series } of this.metrics) {
      for (const [key, id] of series) {
        const values = JSON.parse(key) as string[];
        const labels = Object.fromEntries(def.labels.map((l, i) => [l, values[i]!]));
        const at = (id - 1) * SERIES_SLOTS;
        const sample: MetricSample = { name: def.name, kind: def.kind, help: def.help, labels, value: this.values[at]! };
        if (def.kind === 'histogram') {
          let total = 0;
          sample.buckets = def.buckets.map((le, i) => ({ le, count: (total += this.values[at + i]!) }));
          sample.value = total + this.values[at + def.buckets.length]!;
          sample.sum = this.values[at + SERIES_SLOTS - 1]!;
        }
        out.push(sample);
      }
    }
    return out;
  }

  /**
   * Applies `count` updates laid out as the WIT `update` (u32 series at 0,
   * f64 value at 8, 16 bytes each) from byte `at` (8-aligned) of the memory
   * that `u32` and `f64` view (whole: no view is made per call).
   */
  report(u32: Uint32Array, f64: Float64Array, at: number, count: number): number {
    if (count > REPORT_MAX) return fail(ErrorCode.Limit);
    const { values, seriesMetric, seriesBounds, seriesAdds } = this;
    const u = at >>> 2;
    const f = (at >>> 3) + 1;
    let first = 0;
    for (let i = 0; i < count; i++) {
      const s = u32[u + 4 * i]! - 1;
      const v = f64[f + 2 * i]!;
      if (s < 0 || s >= seriesMetric.length) {
        first ||= fail(ErrorCode.BadHandle);
        continue;
      }
      if (!Number.isFinite(v)) {
        first ||= fail(ErrorCode.Invalid);
        continue;
      }
      const slot = s * SERIES_SLOTS;
      const bounds = seriesBounds[s];
      if (bounds) {
        observe(values, slot, bounds, slot + SERIES_SLOTS - 1, v);
      } else if (seriesAdds[s]) {
        if (v < 0) {
          first ||= fail(ErrorCode.Invalid);
          continue;
        }
        values[slot]! += v;
      } else {
        values[slot] = v;
      }
    }
    return first;
  }
}
