// Active expiry: keys past their deadline are deleted even if no client ever
// touches them again (lazy expiry, in Store.lookup, handles the ones that
// are touched).
//
// This is Redis's active expire cycle, for one database: `hz` times a second,
// sample 20 keys at random among those with a deadline, delete the expired
// ones, and sample again while more than 10% of a sample had expired, since
// then many more are likely waiting. The work is bounded twice, so a
// keyspace full of expired keys cannot stall the loop (or trip the host's
// CPU budget between two waits): by time (a quarter of the period, as Redis)
// and by the size of the key list.
//
// Sampling rather than a sorted structure keeps every write O(1) and costs
// nothing when no key has a deadline; the price is that an expired key may
// linger (counted by DBSIZE, invisible to reads) until a cycle finds it, as
// in Redis.

import { nowNanos } from "../../sdk";
import { Clock } from "./clock";
import { Store, PERSISTENT } from "./store";

const KEYS_PER_SAMPLE: i32 = 20;
const ACCEPTABLE_STALE_PERCENT: i32 = 10;
const TIME_SHARE_PERCENT: u64 = 25;
// Reading the clock is a host call: check the time limit every few samples.
const SAMPLES_PER_TIME_CHECK: i32 = 16;

export class ActiveExpiry {
  private readonly random: Random;
  private readonly timeLimitNs: u64;

  constructor(readonly hz: i32, seed: u64) {
    this.random = new Random(seed);
    this.timeLimitNs = 1_000_000_000 / <u64>hz * TIME_SHARE_PERCENT / 100;
  }

  /** Milliseconds between two cycles. */
  get periodMs(): u64 {
    return <u64>(1000 / this.hz);
  }

  /** Runs one cycle; returns how many keys it deleted. */
  cycle(store: Store, clock: Clock): i32 {
    const start = nowNanos();
    const now = clock.now();
    let deleted = 0;
    // Never more samples than could visit every listed key a few times over.
    const maxSamples = store.volatileCount / KEYS_PER_SAMPLE * 4 + 4;
    for (let samples = 1; store.volatileCount > 0 && samples <= maxSamples; samples++) {
      const n = min(store.volatileCount, KEYS_PER_SAMPLE);
      let expired = 0;
      for (let i = 0; i < n && store.volatileCount > 0; i++) {
        const e = store.volatileAt(this.random.below(store.volatileCount));
        if (e.expiresAt != PERSISTENT && now > e.expiresAt) {
          store.remove(e);
          store.expiredKeys++;
          expired++;
        }
      }
      deleted += expired;
      if (expired * 100 <= n * ACCEPTABLE_STALE_PERCENT) break;
      if (samples % SAMPLES_PER_TIME_CHECK == 0 && nowNanos() - start > this.timeLimitNs) break;
    }
    return deleted;
  }
}

/** xorshift64*: a small, fast generator, good enough to pick sample keys. */
export class Random {
  private state: u64;

  constructor(seed: u64) {
    this.state = seed != 0 ? seed : 0x9e3779b97f4a7c15;
  }

  next(): u64 {
    let x = this.state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    this.state = x;
    return x * 0x2545f4914f6cdd1d;
  }

  /** Uniform enough in [0, n) for n far below 2^32. */
  below(n: i32): i32 {
    return <i32>((this.next() >> 32) % <u64>n);
  }
}
