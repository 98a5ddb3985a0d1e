/**
 * Host side of wasi:clocks/monotonic-clock and wall-clock @0.2.0 (the
 * subset in wit/deps/clocks/clocks.wit).
 */
import type { InstanceContext } from './context.js';

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

export function wallClockImports(ctx: InstanceContext) {
  const { mem } = ctx;
  // datetime { seconds: u64, nanoseconds: u32 }: size 16, align 8.
  function store(retptr: number, seconds: number, nanos: number): void {
    retptr >>>= 0;
    mem.sync();
    mem.checkArea(retptr, 16, 8);
    mem.u32[retptr >>> 2] = seconds >>> 0;
    mem.u32[(retptr >>> 2) + 1] = Math.floor(seconds / 2 ** 32);
    mem.u32[(retptr >>> 2) + 2] = nanos;
  }
  return {
    now(retptr: number): void {
      const ms = Date.now();
      store(retptr, Math.floor(ms / 1000), (ms % 1000) * Number(NS_PER_MS));
    },
    resolution(retptr: number): void {
      store(retptr, 0, Number(NS_PER_MS));
    },
  };
}
