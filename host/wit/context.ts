/**
 * Everything the per-interface glue files (poll.ts, tcp.ts, log.ts,
 * clocks.ts) share for one plugin instance.
 */
import type { Backend } from '../backends/backend.js';
import type { SocketAddress } from '../backends/address.js';
import type { HandleTable } from '../sandbox/handle-table.js';
import { LOG_SHARED_SLOTS, type LogLimiter } from '../sandbox/log-limiter.js';
import type { GuestMemory } from './guest-memory.js';
import type { Gate } from './gate.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error'];
/** Who wrote a line's text: the host (about an instance), or the guest itself (its `log` calls). */
export type LogOrigin = 'host' | 'guest';

/** Limits the glue enforces (the policy, as far as this instance needs it). */
export interface InstanceLimits {
  /** Open connections (accepted + connected); more are closed at accept, refused at connect. */
  readonly maxConnections: number;
  /** The linear-memory cap (enforced in the module itself; told to the guest by limits.memory-limit). */
  readonly maxMemoryBytes: number;
  /** Shut down a connection idle this long (ms); 0 = never. */
  readonly idleTimeoutMs: number;
  /** SO_SNDBUF for every connection: what a peer that never reads can make the host hold. */
  readonly maxSendQueueBytes: number;
  /** Addresses `tcp.listen` may bind (port 0 in the policy allows any port). */
  readonly listen: readonly SocketAddress[];
  /** May `tcp.connect` reach `addr`? */
  connectAllowed(addr: SocketAddress): boolean;
  readonly maxEventsPerWait: number;
  readonly maxRecvBytes: number;
  readonly maxBacklog: number;
  /** Whether listeners set SO_REUSEPORT (several workers share the port). */
  readonly sharedListen: boolean;
}

/** Per-instance counters in shared memory, readable by the supervisor at any time. */
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
/**
 * Not counters either: the log limiter's slots (sandbox/log-limiter.ts):
 * the lines it suppressed since its last summary, which the supervisor
 * summarizes when the instance ends, however it ends, and its bucket, which
 * the supervisor hands to the next incarnation.
 */
export const STAT_LOG_SUPPRESSED = 9;
/** Not a counter: the guest's linear memory now, in bytes (it only grows; written when it does). */
export const STAT_MEMORY = STAT_LOG_SUPPRESSED + LOG_SHARED_SLOTS;
export const STAT_COUNT = STAT_MEMORY + 1;

/** Control words shared with the supervisor (Int32Array over a SharedArrayBuffer). */
export const CTRL_STOP = 0; // non-zero: stop at the next wait
/** What the instance's thread is doing, and whether it is to die: the kill gate (see gate.ts). */
export const CTRL_STATE = 1;
/** Bumped each time the guest starts running (before instantiation, and when wait returns): the watchdog's clock. */
export const CTRL_RUN_SEQ = 2;
export const CTRL_DRAIN = 3; // non-zero: close the listeners, keep serving open connections
export const CTRL_COUNT = 4;

export interface InstanceContext {
  readonly mem: GuestMemory;
  readonly table: HandleTable;
  readonly backend: Backend;
  readonly limits: InstanceLimits;
  readonly stats: Float64Array;
  readonly control: Int32Array;
  /** The kill gate over control[CTRL_STATE]: every call that opens or closes a descriptor passes it. */
  readonly gate: Gate;
  /** performance.now() as of the last wait: a clock the glue reads for free. */
  readonly clock: { nowMs: number };
  /**
   * The instance's log rate. Every line written on the guest's behalf asks
   * `logLimit.admit(kind)` first, before it builds its text, and is written
   * with `log` only when admitted.
   */
  readonly logLimit: LogLimiter;
  /** Writes one line about this instance (admitted by logLimit). */
  log(level: LogLevel, origin: LogOrigin, message: string): void;
  /** Called once per listen/connect that the policy refused; asks logLimit itself. */
  denied(operation: 'listen' | 'connect', addr: SocketAddress, rule: string): void;
  /** Called when the guest starts listening (the supervisor reports the address). */
  listening(addr: SocketAddress): void;
}
