/**
 * The messages between the supervisor (main thread) and an instance's
 * worker: structured-clone data, posted. What both sides read and write
 * without a message (control words, counters) is laid out in
 * sandbox/shared.ts.
 */
import type { BackendName } from '../backends/backend.js';
import type { AddressData } from '../backends/address.js';
import type { LogLevel, LogOrigin } from '../sandbox/instance-host.js';
import type { LogBucket } from '../sandbox/log-limiter.js';
import type { InstanceKnobs } from '../sandbox/policy.js';
import type { MetricDef, SeriesDef } from '../sandbox/metrics.js';
import type { TraceTail } from '../trace/recorder.js';

// ---- messages ------------------------------------------------------------------------

export type { AddressData };

/** What the worker gets when it starts. */
export interface WorkerInput {
  plugin: string;
  module: WebAssembly.Module;
  backend: BackendName;
  instance: number;
  config: string;
  listen: AddressData[];
  sharedListen: boolean;
  /** The policy's instance knobs (sandbox/policy.ts), and what the host adds. */
  limits: InstanceKnobs & {
    maxRecvBytes: number;
    maxBacklog: number;
    /** Outbound rules as written (sandbox/policy.ts parses them again there). */
    connect: string[];
    /** Policy proxyProtocol: read a PROXY protocol header from every accepted connection first. */
    proxyProtocol: boolean;
  };
  /** Int32Array of CTRL_COUNT control words. */
  control: SharedArrayBuffer;
  /** Float64Array of STAT_COUNT counters. */
  stats: SharedArrayBuffer;
  /** Float64Array of the plugin-defined metrics' values (sandbox/metrics.ts metricValuesBuffer(limits.metricSeries)). */
  metrics: SharedArrayBuffer;
  /** Float64Array descriptor registry (sandbox/handle-table.ts). */
  registry: SharedArrayBuffer;
  /**
   * Float64Array, one cell per `listen` address: the listening socket the
   * previous version's instance handed over (a descriptor the supervisor
   * duplicated for this incarnation), or -1 (InstanceHostOptions.inherited).
   */
  inherited?: SharedArrayBuffer;
  /**
   * Live handover (wit/handover.wit; absent while recording):
   * Int32Arrays of cells, -1 when free: `outgoing`, sockets this
   * incarnation gave that the supervisor has not taken; `incoming`, sockets
   * handed to it not yet adopted. The supervisor closes whatever is still
   * there when the thread is gone.
   */
  handover?: { outgoing: SharedArrayBuffer; incoming: SharedArrayBuffer };
  /** The instance's log rate as its previous incarnation left it (sandbox/log-limiter.ts). */
  logBucket: LogBucket;
  /** Record this incarnation (wasmux run --record): where, within what size, and what the header adds. */
  record?: WorkerRecording;
}

/** A recording's settings for one incarnation (host/trace/recorder.ts). */
export interface WorkerRecording {
  file: string;
  maxBytes: number;
  pluginPath: string | null;
  sha256: string;
  maxTableElements: number;
  maxHeapMiB: number;
  cpuBudgetMs: number;
  incarnation: number;
  /** The chunk and cells shared with the supervisor (trace/recorder.ts TraceTail). */
  tail: TraceTail;
}

/** How an instance ended (sandbox/traps.ts). */
export type { ExitReason } from '../sandbox/traps.js';
import type { ExitReason } from '../sandbox/traps.js';

export type WorkerMessage =
  | { type: 'started'; wakeTarget: number /** This thread's CPU clock (null: none on this OS). */; cpuClock: number | null }
  | { type: 'log'; level: LogLevel; origin: LogOrigin; message: string }
  | { type: 'listening'; address: AddressData; fd: number }
  | { type: 'exit'; reason: ExitReason; message: string | null }
  /** handover.give succeeded: the socket is in outgoing cell `cell`. */
  | { type: 'gave'; cell: number; listen: number; state: Uint8Array; peer?: AddressData }
  /** The guest waits again: the connections given since its last wait are one batch. */
  | { type: 'gave-end' }
  /** The guest called handover.adopt on a listener of address `listen` for the first time. */
  | { type: 'adopting'; listen: number }
  /** A handover ended in this instance: adopted (ok) or failed; `from` the version it came from, null: this one gave it. */
  | { type: 'handover-end'; from: number | null; ok: boolean }
  /** The guest defined a metric (wit/metrics.wit); its values are in WorkerInput.metrics. */
  | { type: 'metric'; def: MetricDef }
  /** The guest added a series of a metric. */
  | { type: 'metric-series'; series: SeriesDef };

/** What the supervisor posts to a worker (read inside poll.wait with receiveMessageOnPort). */
export interface AdoptMessage {
  type: 'adopt';
  /** Per connection: the incoming cell holding the socket, its listen address, its state, the version it came from. */
  batch: { cell: number; listen: number; state: Uint8Array; from: number; peer?: AddressData }[];
}
