// Plugin-defined metrics (wit/metrics.wit), exported by the host's admin
// endpoint as `<plugin>_<name>{plugin, instance, your labels}`.
//
//   const requests = new Counter("requests_total", "Requests answered", ["class"]);
//   const ok = requests.series(["2xx"]);     // once: a host call
//   ok.inc();                                // per event: a store in guest memory
//   const depth = new Gauge("queue_depth", "Jobs queued");
//   depth.set(3);
//
// An update is never a host call: counters and gauges keep their pending
// value in their series, histograms append their observations to a buffer,
// and the whole batch goes to the host in one `report` call, before the
// SDK's next poll.wait (Poll.poll), or when the buffer (512 updates) is
// full. Defining a metric and a series are host calls: do them at start,
// or once per new label value, and keep the objects.
//
// A definition the host refuses (a bad name, the series cap reached,
// policy metric-series) gives a metric or series whose updates are dropped;
// `error` says why (an IoError, 0 when fine).

import { metrics_define, metrics_report, metrics_series, UPDATE_SERIES, UPDATE_SIZE, UPDATE_VALUE } from "./bindings";
import { RET, u32Result, unitResult } from "./abi";
import { onBeforeWait } from "./poll";

const KIND_COUNTER: u32 = 0;
const KIND_GAUGE: u32 = 1;
const KIND_HISTOGRAM: u32 = 2;

/** Updates the SDK buffers before it reports them (16 bytes each). */
const BATCH: i32 = 512;
const batch: usize = memory.data(BATCH * <i32>UPDATE_SIZE, 8);
let batched: i32 = 0;
/** Counters and gauges with a value not yet reported. */
const dirty = new Array<Series>();
let lastReportError: i32 = 0;

/** The IoError of the last report the host refused in part (0: none), for a plugin's own checks. */
export function metricsReportError(): i32 { return lastReportError; }

function put(series: u32, value: f64): void {
  if (batched == BATCH) send();
  const at = batch + <usize>batched * UPDATE_SIZE;
  store<u32>(at + UPDATE_SERIES, series);
  store<f64>(at + UPDATE_VALUE, value);
  batched++;
}

function send(): void {
  if (batched == 0) return;
  metrics_report(batch, <usize>batched, RET);
  const r = unitResult();
  if (r < 0) lastReportError = r;
  batched = 0;
}

/** Hands every pending update to the host in one call. Poll.poll calls it before each wait. */
export function flushMetrics(): void {
  const n = dirty.length;
  for (let i = 0; i < n; i++) {
    const s = unchecked(dirty[i]);
    s.dirty = false;
    put(s.id, s.pending);
    if (s.kind == KIND_COUNTER) s.pending = 0;
  }
  dirty.length = 0;
  send();
}

// list<string>: (ptr, len) pairs; the encoded strings kept alive in `keep` for the call.
function lowerStrings(list: string[], keep: Array<ArrayBuffer>): usize {
  if (list.length == 0) return 8;
  const pairs = new ArrayBuffer(list.length * 8);
  keep.push(pairs);
  const at = changetype<usize>(pairs);
  for (let i = 0; i < list.length; i++) {
    const b = String.UTF8.encode(list[i]);
    keep.push(b);
    store<u32>(at + <usize>i * 8, <u32>changetype<usize>(b));
    store<u32>(at + <usize>i * 8 + 4, <u32>b.byteLength);
  }
  return at;
}

/** One series of a metric. Updating it is a store; the SDK reports it before the next wait. */
export class Series {
  /** A counter's increase not yet reported, or a gauge's value. */
  pending: f64 = 0;
  dirty: bool = false;
  constructor(readonly id: u32, readonly kind: u32) {}

  // @ts-ignore: decorator
  @inline protected mark(): void {
    if (!this.dirty && this.id != 0) {
      this.dirty = true;
      dirty.push(this);
    }
  }
}

export class CounterSeries extends Series {
  /** Adds 1. */
  // @ts-ignore: decorator
  @inline inc(): void {
    this.pending += 1;
    this.mark();
  }

  /** Adds `v` (finite, >= 0; others are dropped). */
  add(v: f64): void {
    if (!(v >= 0) || v == Infinity) return;
    this.pending += v;
    this.mark();
  }
}

export class GaugeSeries extends Series {
  set(v: f64): void {
    if (!isFinite(v)) return;
    this.pending = v;
    this.mark();
  }
  add(v: f64): void { this.set(this.pending + v); }
  inc(): void { this.set(this.pending + 1); }
  dec(): void { this.set(this.pending - 1); }
  /** The value as last set here. */
  get value(): f64 { return this.pending; }
}

export class HistogramSeries extends Series {
  /** Observes `v` (finite; others are dropped): one entry in the SDK's buffer. */
  observe(v: f64): void {
    if (this.id == 0 || !isFinite(v)) return;
    put(this.id, v);
  }
}

/** A metric (the base of Counter, Gauge and Histogram). */
export class Metric {
  /** The host's id for it; 0 when the host refused it (see `error`). */
  id: u32 = 0;
  /** 0, or the IoError of the define (Invalid: a name or label rule; Limit: the instance's cap). */
  error: i32 = 0;
  readonly labelCount: i32;

  constructor(readonly kind: u32, name: string, help: string, labels: string[], buckets: StaticArray<f64> | null) {
    this.labelCount = labels.length;
    const n = String.UTF8.encode(name);
    const h = String.UTF8.encode(help);
    const keep = new Array<ArrayBuffer>();
    const list = lowerStrings(labels, keep);
    const bPtr: usize = buckets === null ? 8 : changetype<usize>(buckets);
    const bLen: usize = buckets === null ? 0 : <usize>buckets.length;
    metrics_define(kind, changetype<usize>(n), <usize>n.byteLength, changetype<usize>(h), <usize>h.byteLength,
      list, <usize>labels.length, bPtr, bLen, RET);
    const r = u32Result();
    if (r > 0) {
      this.id = <u32>r;
      onBeforeWait(flushMetrics);
    } else {
      this.error = r;
    }
  }

  /** The host's series id for `values` (0 when refused: its updates are dropped). */
  protected seriesId(values: string[]): u32 {
    if (this.id == 0) return 0;
    const keep = new Array<ArrayBuffer>();
    metrics_series(this.id, lowerStrings(values, keep), <usize>values.length, RET);
    const r = u32Result();
    return r > 0 ? <u32>r : 0;
  }
}

/** A counter: only goes up. */
export class Counter extends Metric {
  private unlabelled: CounterSeries | null = null;
  constructor(name: string, help: string, labels: string[] = []) {
    super(KIND_COUNTER, name, help, labels, null);
  }
  /** The series for `values`, one per label name in order (a host call: keep it). */
  series(values: string[]): CounterSeries { return new CounterSeries(this.seriesId(values), KIND_COUNTER); }
  /** The series of a counter without labels. */
  get only(): CounterSeries {
    let s = this.unlabelled;
    if (s === null) this.unlabelled = s = this.series([]);
    return s;
  }
  inc(): void { this.only.inc(); }
  add(v: f64): void { this.only.add(v); }
}

/** A gauge: a value that goes up and down. */
export class Gauge extends Metric {
  private unlabelled: GaugeSeries | null = null;
  constructor(name: string, help: string, labels: string[] = []) {
    super(KIND_GAUGE, name, help, labels, null);
  }
  series(values: string[]): GaugeSeries { return new GaugeSeries(this.seriesId(values), KIND_GAUGE); }
  get only(): GaugeSeries {
    let s = this.unlabelled;
    if (s === null) this.unlabelled = s = this.series([]);
    return s;
  }
  set(v: f64): void { this.only.set(v); }
  add(v: f64): void { this.only.add(v); }
}

/** A histogram: observations counted in buckets (upper bounds, increasing; the host adds +Inf). */
export class Histogram extends Metric {
  private unlabelled: HistogramSeries | null = null;
  constructor(name: string, help: string, buckets: StaticArray<f64>, labels: string[] = []) {
    super(KIND_HISTOGRAM, name, help, labels, buckets);
  }
  series(values: string[]): HistogramSeries { return new HistogramSeries(this.seriesId(values), KIND_HISTOGRAM); }
  get only(): HistogramSeries {
    let s = this.unlabelled;
    if (s === null) this.unlabelled = s = this.series([]);
    return s;
  }
  observe(v: f64): void { this.only.observe(v); }
}
