/**
 * What the supervisor (main thread) and an instance's worker share: the
 * messages that cross (structured-clone data), and the layout of the two
 * shared arrays both sides read and write without a message (the control
 * words and the counters). The one owner of that layout: the supervisor,
 * the worker and the instance's host (sandbox/instance-host.ts) all take it
 * from here.
 */
import type { BackendName } from '../backends/backend.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
/** The WIT log `level` enum's order. */
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];
/** Who wrote a line's text: the host (about an instance), or the guest itself (its `log` calls). */
export type LogOrigin = 'host' | 'guest';

/** A token bucket's state: its tokens as of `at` (performance.timeOrigin + performance.now() ms). */
export interface LogBucket {
  tokens: number;
  at: number;
}

// ---- control words: an Int32Array over a SharedArrayBuffer -------------------------

/** Non-zero: stop at the next wait. */
export const CTRL_STOP = 0;
/** What the instance's thread is doing, and whether it is to die: the kill gate (sandbox/gate.ts). */
export const CTRL_STATE = 1;
/** Bumped each time the guest starts running (before instantiation, and when wait returns): the watchdog's clock. */
export const CTRL_RUN_SEQ = 2;
/** Non-zero: close the listeners, keep serving open connections. */
export const CTRL_DRAIN = 3;
export const CTRL_COUNT = 4;

// ---- counters: a Float64Array over a SharedArrayBuffer -----------------------------

export const STAT_ACCEPTED = 0;
export const STAT_OPEN = 1;
export const STAT_BYTES_IN = 2;
export const STAT_BYTES_OUT = 3;
export const STAT_EVENTS = 4;
export const STAT_WAITS = 5;
/** Connections closed at accept because the instance was at maxConnections. */
export const STAT_REFUSED = 6;
/** Connections shut down by the idle timeout. */
export const STAT_IDLE_CLOSED = 7;
/**
 * Not a counter: when the guest last started running (performance.timeOrigin
 * + performance.now(), so comparable across threads). Written before the
 * CTRL_RUN_SEQ bump and the CTRL_STATE change that start the run (both
 * sequentially consistent), so a watchdog that sees the run reads its start.
 */
export const STAT_RUN_STARTED_AT = 8;
/** Not a counter: the guest's linear memory now, in bytes (it only grows; written when it does). */
export const STAT_MEMORY = 9;
/**
 * Not counters either: the log limiter's slots (sandbox/log-limiter.ts):
 * the lines it suppressed since its last summary, which the supervisor
 * summarizes when the instance ends, however it ends, and its bucket, which
 * the supervisor hands to the next incarnation.
 */
export const STAT_LOG = 10;
export const LOG_SHARED_SLOTS = 7;
export const STAT_COUNT = STAT_LOG + LOG_SHARED_SLOTS;

// ---- messages ------------------------------------------------------------------------

export interface AddressData {
  v6: boolean;
  groups: number[];
  port: number;
}

/** What the worker gets when it starts. */
export interface WorkerInput {
  plugin: string;
  module: WebAssembly.Module;
  backend: BackendName;
  instance: number;
  config: string;
  listen: AddressData[];
  sharedListen: boolean;
  limits: {
    maxEventsPerWait: number;
    maxRecvBytes: number;
    maxBacklog: number;
    maxConnections: number;
    idleTimeoutMs: number;
    maxSendQueueBytes: number;
    /** The policy's linear-memory cap (already enforced in the module). */
    maxMemoryBytes: number;
    /** Outbound rules as written (sandbox/policy.ts parses them again there). */
    connect: string[];
  };
  /** Int32Array of CTRL_COUNT control words. */
  control: SharedArrayBuffer;
  /** Float64Array of STAT_COUNT counters. */
  stats: SharedArrayBuffer;
  /** Float64Array descriptor registry (sandbox/handle-table.ts). */
  registry: SharedArrayBuffer;
  /** The instance's log rate as its previous incarnation left it (sandbox/log-limiter.ts). */
  logBucket: LogBucket;
}

/**
 * How an instance ended: its run returned ok / an error; the host stopped it;
 * it trapped (a wasm trap or an ABI violation); the watchdog killed it; the
 * worker thread failed for another reason (a host bug).
 */
export type ExitReason = 'returned' | 'failed' | 'stopped' | 'trapped' | 'killed' | 'crashed';

export type WorkerMessage =
  | { type: 'started'; wakeTarget: number; /** This thread's CPU clock (null: none on this OS). */ cpuClock: number | null }
  | { type: 'log'; level: LogLevel; origin: LogOrigin; message: string }
  | { type: 'listening'; address: AddressData }
  | { type: 'exit'; reason: ExitReason; message: string | null };
