/**
 * Virtual time for a simulation: a monotonic clock and a wall clock that
 * move only when the simulation moves them (the host's deadlines, the idle
 * sweep, the log rate and the guest's wasi clocks all read this one; see
 * sandbox/clock.ts).
 */
import type { Clock } from '../sandbox/clock.js';

/** Where a simulation's clocks start: monotonic 1 s, wall 2026-01-01T00:00:00Z. */
export const SIM_START_MS = 1000;
export const SIM_WALL_START_MS = Date.UTC(2026, 0, 1);

export class VirtualClock implements Clock {
  private ms = SIM_START_MS;
  /** What clock jumps moved the wall clock by, in total. */
  private wallOffsetMs = 0;

  nowMs(): number {
    return this.ms;
  }

  monotonicNs(): bigint {
    return BigInt(Math.round(this.ms * 1000)) * 1000n;
  }

  wallMs(): number {
    return SIM_WALL_START_MS + (this.ms - SIM_START_MS) + this.wallOffsetMs;
  }

  /** Moves both clocks forward to `ms` (never back). */
  advanceTo(ms: number): void {
    if (ms > this.ms) this.ms = ms;
  }

  /** A clock jump: the wall clock by `wallMs` (either way), the monotonic one forward by `monotonicMs`. */
  jump(wallMs: number, monotonicMs: number): void {
    this.wallOffsetMs += wallMs;
    this.ms += Math.max(0, monotonicMs);
  }
}
