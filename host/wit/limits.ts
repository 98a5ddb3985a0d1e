/**
 * Host side of wasmux:plugin/limits@0.1.0 (wit/limits.wit): the instance's
 * policy, as the guest may read it. Constant for the instance's life.
 */
import type { GlueContext } from './context.js';

export function limitsImports({ mem, host }: GlueContext) {
  const memoryLimit = BigInt(host.limits.maxMemoryMiB) * 1048576n;
  return {
    'memory-limit'(): bigint {
      mem.sync(); // an import called from cabi_realloc or a start function traps here
      return memoryLimit;
    },
    'max-connections'(): number {
      mem.sync();
      return host.limits.maxConnections;
    },
  };
}
