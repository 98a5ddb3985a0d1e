/**
 * Host side of wasi:clocks/monotonic-clock and wall-clock @0.2.0 (the
 * subset in wit/deps/clocks/clocks.wit), from the instance's clock
 * (sandbox/clock.ts).
 */
import type { GlueContext } from './context.js';
import { lowerDatetime } from './abi.js';

const NS_PER_MS = 1_000_000n;

export function monotonicClockImports({ host }: GlueContext) {
  const { time } = host;
  return {
    now(): bigint {
      return time.monotonicNs();
    },
    resolution(): bigint {
      return 1n;
    },
  };
}

export function wallClockImports({ mem, host }: GlueContext) {
  const { time } = host;
  return {
    now(retptr: number): void {
      const ms = time.wallMs();
      lowerDatetime(mem, retptr >>> 0, Math.floor(ms / 1000), (ms % 1000) * Number(NS_PER_MS));
    },
    resolution(retptr: number): void {
      lowerDatetime(mem, retptr >>> 0, 0, Number(NS_PER_MS));
    },
  };
}
