/**
 * Where an instance's time comes from: the host's rules (deadlines, the idle
 * sweep, the log rate) and the guest's clocks (wasi:clocks) read it here, so
 * that a simulation can run an instance on virtual time and a recording can
 * keep what the guest was told. The real clock is the default.
 */
export interface Clock {
  /** Monotonic milliseconds (fractional): what the host's deadlines and rates are measured in. */
  nowMs(): number;
  /** Monotonic nanoseconds, for the guest's monotonic clock. */
  monotonicNs(): bigint;
  /** Milliseconds since the Unix epoch, for the guest's wall clock. */
  wallMs(): number;
}

/** The machine's clocks: performance.now(), process.hrtime, Date.now(). */
export const REAL_CLOCK: Clock = {
  nowMs: () => performance.now(),
  monotonicNs: () => process.hrtime.bigint(),
  wallMs: () => Date.now(),
};
