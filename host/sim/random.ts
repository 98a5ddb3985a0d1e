/**
 * The simulation's one source of randomness: a seeded generator (SplitMix32,
 * integer arithmetic only, so the same seed gives the same numbers on every
 * machine). Every choice a simulation makes (which fault, how many bytes,
 * how late) draws from the seed; nothing in host/sim reads Math.random or
 * the real clock.
 *
 * The seed is split into streams (stream()), one per kind of choice, so that
 * one kind's draws do not move another's: whether a fault strikes, what the
 * fault then does, the scenario's own draws (net.random) and the host's
 * (the handle table's salt). A scenario's choices are thus the same with or
 * without faults, and a fault pinned to its step (a schedule, which draws no
 * decision) does exactly what it did when a rate chose it.
 */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Stream `n` of `seed`: an independent generator, the same for the same pair. */
  static stream(seed: number, n: number): Random {
    const mix = new Random((seed >>> 0) ^ Math.imul(n + 1, 0x85ebca6b));
    mix.next();
    return new Random(mix.next() ^ Math.imul(n + 1, 0xc2b2ae35));
  }

  /** A uniform u32. */
  next(): number {
    this.state = (this.state + 0x9e3779b9) | 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  }

  /** A uniform number in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** A uniform integer in [lo, hi] (inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  /** True with probability `rate`; a rate of 0 or 1 draws nothing. */
  chance(rate: number): boolean {
    if (rate <= 0) return false;
    if (rate >= 1) return true;
    return this.float() < rate;
  }
}
