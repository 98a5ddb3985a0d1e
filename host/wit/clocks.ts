/**
 * Host side of wasi:clocks/monotonic-clock and wall-clock @0.2.0 (the
 * subset in wit/deps/clocks/clocks.wit).
 */
import type { GlueContext } from './context.js';
import { lowerDatetime } from './abi.js';

const NS_PER_MS = 1_000_000n;

export function monotonicClockImports() {
  return {
    now(): bigint {
      return process.hrtime.bigint();
    },
    resolution(): bigint {
      return 1n;
    },
  };
}

export function wallClockImports({ mem }: GlueContext) {
  return {
    now(retptr: number): void {
      const ms = Date.now();
      lowerDatetime(mem, retptr >>> 0, Math.floor(ms / 1000), (ms % 1000) * Number(NS_PER_MS));
    },
    resolution(retptr: number): void {
      lowerDatetime(mem, retptr >>> 0, 0, Number(NS_PER_MS));
    },
  };
}
