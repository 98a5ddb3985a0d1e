/**
 * What an instance's thread and its supervisor share without a message: two
 * arrays over SharedArrayBuffers, the control words (Int32Array, read with
 * Atomics) and the counters (Float64Array). This file owns their layout;
 * the kill gate, the instance's host, the log limiter, the worker and the
 * supervisor all index them through these names.
 */
import { LOG_SHARED_SLOTS } from './log-limiter.js';

// ---- control words: an Int32Array over a SharedArrayBuffer -------------------------

/** Non-zero: stop at the next wait. */
export const CTRL_STOP = 0;
/** What the instance's thread is doing, and whether it is to die: the kill gate (sandbox/gate.ts). */
export const CTRL_STATE = 1;
/** Bumped each time the guest starts running (before instantiation, and when wait returns): the watchdog's clock. */
export const CTRL_RUN_SEQ = 2;
/**
 * Non-zero: close the listeners, keep serving open connections. The
 * instance sets it to DRAIN_DONE once its listeners are closed (from then
 * on it accepts nothing: a reload waits for that before it resolves).
 */
export const CTRL_DRAIN = 3;
export const DRAIN_DONE = 2;
/**
 * CTRL_DRAIN's value for a stop (PluginServer.drain), not a reload: before
 * closing a listener the instance takes the connections the kernel has
 * queued on it (closing would reset them, and no other instance of this
 * plugin will take them), and its guest accepts them before the hang-up.
 * On a reload (value 1) the socket lives on in the new version: they wait
 * there.
 */
export const DRAIN_STOP = 3;
/**
 * Live handover (wit/handover.wit): bit i set when the new version takes
 * connections on listen address i (set by the supervisor before CTRL_DRAIN);
 * `handover.give` of a connection from another address says `denied`.
 */
export const CTRL_HANDOVER = 4;
/**
 * Live handover: bumped by the supervisor after it posts connections for
 * this instance to adopt. The instance reads its messages only when this
 * moved, so a wait with nothing handed over costs one atomic load, not a
 * message-port call.
 */
export const CTRL_ADOPT_SEQ = 5;
export const CTRL_COUNT = 6;

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
/** Connections this instance gave to a new version (handover.give that succeeded). */
export const STAT_GIVEN = STAT_LOG + LOG_SHARED_SLOTS;
/** Connections handed to this instance that it adopted. */
export const STAT_ADOPTED = STAT_GIVEN + 1;
/**
 * The loop-turn histogram (wasmux_loop_turn_seconds): how long the guest ran
 * between two waits (from one wait's return to the next wait call), in
 * seconds. A count per bound of TURN_BOUNDS, then +Inf (not cumulative),
 * then the sum at STAT_TURN_SUM.
 */
export const STAT_TURN = STAT_ADOPTED + 1;
export const TURN_BOUNDS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.05, 0.25, 1];
export const STAT_TURN_SUM = STAT_TURN + TURN_BOUNDS.length + 1;
/**
 * PROXY protocol headers refused (policy proxyProtocol), one counter per
 * reason, in the order of PROXY_REASONS (sandbox/proxy-header.ts):
 * malformed (a missing header included), truncated (end of stream or a
 * reset before its end), timeout, oversized, unsupported (a family that
 * is not TCP). Each such connection was closed before the guest saw it.
 */
export const STAT_PROXY_REJECTED = STAT_TURN_SUM + 1;
export const STAT_PROXY_REASONS = 5;
/** The counters' length. */
export const STAT_COUNT = STAT_PROXY_REJECTED + STAT_PROXY_REASONS;
