// The per-instance log limiter (host/sandbox/log-limiter.ts) on a fake
// clock: a burst of 200, then 100 lines per second; suppressed lines
// counted per kind and summarized at most once a second, taking a token;
// poll.wait's wake-up for a pending summary; the bucket handed on to the
// next incarnation.
import { describe, it, expect, afterEach, vi } from 'vitest';
import {
  LOG_DENIAL,
  LOG_GUEST,
  LOG_OS_ERROR,
  LOG_SHARED_SLOTS,
  LogLimiter,
  bucketAfter,
  fullBucket,
  pendingSummary,
} from '../host/sandbox/log-limiter.js';

afterEach(() => {
  vi.useRealTimers();
});

function limiter(bucket = fullBucket()) {
  const shared = new Float64Array(LOG_SHARED_SLOTS);
  const summaries: string[] = [];
  return { shared, summaries, limit: new LogLimiter(shared, bucket, (m) => summaries.push(m)) };
}

/** How many of `n` admits of `kind` get through. */
function admitted(l: LogLimiter, kind: 0 | 1 | 2 | 3, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.admit(kind)) ok++;
  return ok;
}

describe('the log limiter', () => {
  it('lets a burst of 200 through, then 100 per second; the rest are counted per kind', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const { limit, shared, summaries } = limiter();
    expect(admitted(limit, LOG_GUEST, 1000)).toBe(200);
    expect(admitted(limit, LOG_DENIAL, 5000)).toBe(0);
    vi.advanceTimersByTime(500);
    expect(admitted(limit, LOG_DENIAL, 1000)).toBe(50);
    expect(summaries).toEqual([]);
    expect(pendingSummary(shared, performance.timeOrigin + performance.now())).toBe(
      'suppressed 800 guest log lines and 5,950 denials in the last 0.5 s (log limit: 100 lines/s after a burst of 200)',
    );
  });

  it('writes the summary once a second, as the first line through, and starts counting again', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const { limit, summaries } = limiter();
    admitted(limit, LOG_GUEST, 200);
    admitted(limit, LOG_DENIAL, 3);
    admitted(limit, LOG_OS_ERROR, 1);
    vi.advanceTimersByTime(999);
    // 99 tokens are back; the summary is not due yet.
    expect(admitted(limit, LOG_GUEST, 99)).toBe(99);
    expect(summaries).toEqual([]);
    vi.advanceTimersByTime(1);
    // Due, and a token is there: the summary takes it, this line is suppressed and starts the next count.
    expect(limit.admit(LOG_DENIAL)).toBe(false);
    expect(summaries).toEqual(['suppressed 3 denials and 1 OS error in the last 1.0 s (log limit: 100 lines/s after a burst of 200)']);
    vi.advanceTimersByTime(1000);
    expect(admitted(limit, LOG_GUEST, 1)).toBe(1);
    expect(summaries[1]).toBe('suppressed 1 denial in the last 1.0 s (log limit: 100 lines/s after a burst of 200)');
  });

  it('has poll.wait wake for a pending summary and write it there when the guest has gone quiet', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const { limit, summaries } = limiter();
    expect(limit.summaryDue).toBe(Infinity);
    admitted(limit, LOG_DENIAL, 201);
    const due = limit.summaryDue;
    expect(due).toBe(performance.now() + 1000);
    // A wait without timeout (-1) or with a longer one ends when the summary is due; a shorter one is kept.
    expect(limit.wakeForSummary(performance.now(), -1)).toBe(1000);
    expect(limit.wakeForSummary(performance.now(), 5000)).toBe(1000);
    expect(limit.wakeForSummary(performance.now(), 10)).toBe(10);
    vi.advanceTimersByTime(1000);
    expect(limit.wakeForSummary(performance.now(), -1)).toBe(-1);
    expect(summaries).toEqual(['suppressed 1 denial in the last 1.0 s (log limit: 100 lines/s after a burst of 200)']);
    expect(limit.summaryDue).toBe(Infinity);
  });

  it('waits for a token before it writes a due summary', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const { limit, summaries } = limiter();
    admitted(limit, LOG_GUEST, 200);
    // The count starts with 0.7 tokens in the bucket ...
    vi.advanceTimersByTime(7);
    expect(limit.admit(LOG_GUEST)).toBe(false);
    // ... and every whole token is spent before the summary is due: 0.7 left when it is.
    vi.advanceTimersByTime(999);
    expect(admitted(limit, LOG_GUEST, 200)).toBe(100);
    vi.advanceTimersByTime(1);
    expect(limit.wakeForSummary(performance.now(), -1)).toBe(3);
    expect(summaries).toEqual([]);
    vi.advanceTimersByTime(3);
    expect(limit.wakeForSummary(performance.now(), -1)).toBe(-1);
    expect(summaries).toEqual(['suppressed 101 guest log lines in the last 1.0 s (log limit: 100 lines/s after a burst of 200)']);
  });

  it('hands its bucket to the next incarnation: no fresh burst after a restart', () => {
    vi.useFakeTimers({ toFake: ['performance'] });
    const first = limiter();
    expect(admitted(first.limit, LOG_GUEST, 300)).toBe(200);
    vi.advanceTimersByTime(300);
    const next = limiter(bucketAfter(first.shared, fullBucket()));
    expect(admitted(next.limit, LOG_GUEST, 300)).toBe(30);
    // A limiter that never started leaves the previous bucket as it was.
    const previous = { tokens: 7, at: 12345 };
    expect(bucketAfter(new Float64Array(LOG_SHARED_SLOTS), previous)).toBe(previous);
  });
});
