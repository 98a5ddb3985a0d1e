// Time as commands see it.
//
// Deadlines are kept in monotonic milliseconds, so a wall-clock step (NTP,
// an operator) neither expires keys early nor keeps them late. Clients speak
// in relative times (EX, PX, EXPIRE) or in Unix times (EXAT, PXAT); the
// latter are converted once, on arrival.
//
// Reading a clock is a call into the host. Commands that arrived in one read
// share one reading, taken only if one of them needs it: SET and GET of keys
// without a deadline never ask.

import { nowMillis } from "../../sdk";
import { unixMillis } from "../../sdk/wall-time";

export class Clock {
  private mono: i64 = -1;
  private wall: i64 = -1;

  /** Forgets the readings: call before each batch of commands. */
  advance(): void {
    this.mono = -1;
    this.wall = -1;
  }

  /** Monotonic milliseconds. */
  now(): i64 {
    if (this.mono < 0) this.mono = <i64>nowMillis();
    return this.mono;
  }

  /** Milliseconds since the Unix epoch: the base of Redis's expire arithmetic. */
  unixNow(): i64 {
    if (this.wall < 0) this.wall = unixMillis();
    return this.wall;
  }

  /** The monotonic deadline for an absolute Unix time in milliseconds (at least 1). */
  deadlineAt(unixMs: i64): i64 {
    const delta = unixMs - this.unixNow(); // both within i64: no overflow
    const mono = this.now();
    if (delta > I64.MAX_VALUE - mono) return I64.MAX_VALUE;
    return max<i64>(mono + delta, 1);
  }

  /** Milliseconds from now until the monotonic deadline `at` (0 once passed). */
  remaining(at: i64): i64 {
    return max<i64>(at - this.now(), 0);
  }
}
