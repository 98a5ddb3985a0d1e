/**
 * The log rate of one plugin instance. Every line the host writes on a
 * guest's behalf (the guest's own `log` calls, policy denials, unexpected
 * OS errors, the connection-cap warning) asks `admit` first, before its text
 * is built: a burst of LOG_BURST lines, then LOG_RATE per second. A line
 * that finds no token costs a clock read and a counter increment (no
 * string, no postMessage: the limiter lives in the instance's worker) and
 * is counted per kind for a summary line.
 *
 * A summary ("suppressed 5,123 denials and 12 guest log lines in the last
 * 1.0 s ...") comes at most once per SUMMARY_EVERY_MS and takes a token
 * like any line, so summaries stay inside the rate too. It is written as
 * soon as a token is free: from the next `admit`, or from `poll.wait`
 * (which wakes for it) when the guest has gone quiet. What is still
 * counted when the instance ends is summarized by the supervisor: the
 * counters live in memory it shares (`shared`), so they outlive a worker
 * the watchdog terminates.
 *
 * The rate is the instance's, not one incarnation's: the bucket's state is
 * in `shared` too, and the supervisor hands it to the next incarnation
 * (bucketAfter), so a plugin that gets itself killed and restarted does not
 * get a fresh burst each time.
 */

export const LOG_BURST = 200;
export const LOG_RATE = 100;
/** Bytes of guest text per line (before escaping); the rest is cut and its length said. */
export const LOG_MAX_BYTES = 4096;
const SUMMARY_EVERY_MS = 1000;

/** What a line is, for the counts of a summary. */
export const LOG_GUEST = 0;
export const LOG_DENIAL = 1;
export const LOG_OS_ERROR = 2;
/** Anything else the glue writes about the guest (the connection-cap warning). */
export const LOG_NOTICE = 3;
export type LogKind = typeof LOG_GUEST | typeof LOG_DENIAL | typeof LOG_OS_ERROR | typeof LOG_NOTICE;

const KIND_NAMES: readonly (readonly [string, string])[] = [
  ['guest log line', 'guest log lines'],
  ['denial', 'denials'],
  ['OS error', 'OS errors'],
  ['other line', 'other lines'],
];
const KINDS = KIND_NAMES.length;
// Slots of `shared` after the counts: when the oldest line not yet
// summarized was suppressed, and the bucket as of the last token taken
// (timeOrigin-based ms: comparable across threads). TOKENS_AT stays 0 until
// a limiter has written it.
const SINCE = KINDS;
const TOKENS = KINDS + 1;
const TOKENS_AT = KINDS + 2;
/** The shared slots a limiter needs: the counts, then SINCE, TOKENS, TOKENS_AT (the last slots of the counters, sandbox/shared.ts). */
export const LOG_SHARED_SLOTS = TOKENS_AT + 1;

/** A token bucket's state: its tokens as of `at` (performance.timeOrigin + performance.now() ms). */
export interface LogBucket {
  tokens: number;
  at: number;
}

/** The bucket of an instance that has not logged yet: a whole burst. */
export function fullBucket(): LogBucket {
  return { tokens: LOG_BURST, at: performance.timeOrigin + performance.now() };
}

/** The bucket a limiter left in `shared` (its instance has ended), or `previous` if it never started. */
export function bucketAfter(shared: ArrayLike<number>, previous: LogBucket): LogBucket {
  return shared[TOKENS_AT] === 0 ? previous : { tokens: shared[TOKENS]!, at: shared[TOKENS_AT]! };
}

export class LogLimiter {
  /**
   * When the pending summary is due (performance.now() ms); Infinity while
   * nothing is suppressed. poll.wait compares against it on every call.
   */
  summaryDue = Infinity;
  private tokens: number;
  private refilledAt: number;

  /**
   * `shared`: LOG_SHARED_SLOTS zeroed slots the supervisor reads when the
   * instance ends (pendingSummary, bucketAfter). `bucket`: where the
   * instance's previous incarnation left the rate. `writeSummary` writes a
   * summary line.
   */
  constructor(
    private readonly shared: Float64Array,
    bucket: LogBucket,
    private readonly writeSummary: (message: string) => void,
    /** Monotonic ms (a simulation passes its virtual clock). */
    private readonly now: () => number = () => performance.now(),
    /**
     * What `now` is counted from, for the times in shared memory and in the
     * bucket (comparable across threads): the real clock's timeOrigin; a
     * simulation's virtual clock passes 0, so that nothing of the machine's
     * own time enters its transcript.
     */
    private readonly origin: number = performance.timeOrigin,
  ) {
    this.tokens = bucket.tokens;
    this.refilledAt = bucket.at - origin;
    this.refill(this.now());
    this.saveBucket();
  }

  /** Takes a token for one line of `kind`; false: the line is suppressed (counted) and must not be written. */
  admit(kind: LogKind): boolean {
    const now = this.now();
    this.refill(now);
    if (now >= this.summaryDue) this.summarize(now);
    if (this.tokens >= 1) {
      this.take();
      return true;
    }
    if (this.summaryDue === Infinity) {
      this.summaryDue = now + SUMMARY_EVERY_MS;
      this.shared[SINCE] = this.origin + now;
    }
    this.shared[kind]++;
    return false;
  }

  /**
   * For poll.wait, only while a summary is pending (summaryDue is finite):
   * writes it if it is due, and returns `sliceMs` (the wait's timeout, -1:
   * none) shortened so that the wait ends when the summary is due.
   */
  wakeForSummary(now: number, sliceMs: number): number {
    if (now >= this.summaryDue) {
      this.refill(now);
      this.summarize(now);
    }
    if (this.summaryDue === Infinity) return sliceMs;
    const dueIn = Math.max(0, Math.ceil(this.summaryDue - now));
    return sliceMs < 0 || sliceMs > dueIn ? dueIn : sliceMs;
  }

  private refill(now: number): void {
    this.tokens = Math.min(LOG_BURST, this.tokens + (now - this.refilledAt) * (LOG_RATE / 1000));
    this.refilledAt = now;
  }

  private summarize(now: number): void {
    if (this.tokens < 1) {
      // Not yet: when the next token is there.
      this.summaryDue = now + (1 - this.tokens) * (1000 / LOG_RATE);
      return;
    }
    this.take();
    this.summaryDue = Infinity;
    const text = pendingSummary(this.shared, this.origin + now);
    this.shared.fill(0, 0, SINCE + 1);
    if (text !== null) this.writeSummary(text);
  }

  // Only taking a token changes the bucket other than by the clock: saving
  // it here is enough for the next incarnation to go on from it.
  private take(): void {
    this.tokens--;
    this.saveBucket();
  }

  private saveBucket(): void {
    this.shared[TOKENS] = this.tokens;
    this.shared[TOKENS_AT] = this.origin + this.refilledAt;
  }
}

/**
 * The summary of the lines counted in `shared` (a limiter's slots) as of
 * `now` (timeOrigin-based ms), or null when none were suppressed.
 */
export function pendingSummary(shared: ArrayLike<number>, now: number): string | null {
  const parts: string[] = [];
  for (let k = 0; k < KINDS; k++) {
    const n = shared[k]!;
    if (n > 0) parts.push(`${n.toLocaleString('en-US')} ${KIND_NAMES[k]![n === 1 ? 0 : 1]}`);
  }
  if (parts.length === 0) return null;
  const list = parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}`;
  const seconds = Math.max(0, now - shared[SINCE]!) / 1000;
  return `suppressed ${list} in the last ${seconds.toFixed(1)} s (log limit: ${LOG_RATE} lines/s after a burst of ${LOG_BURST})`;
}
