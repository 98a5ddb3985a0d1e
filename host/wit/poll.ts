/**
 * Host side of wasmux:plugin/poll@0.1.0 (wit/poll.wit), at the core-wasm
 * level: each function lifts the flattened canonical-ABI arguments, calls the
 * instance's host (sandbox/instance-host.ts: the rules) and lowers its result
 * at `retptr`, exactly as assembly/sdk/bindings.ts calls it.
 */
import type { GlueContext } from './context.js';
import { WAIT_RESULT, liftFlags, liftOption, lowerEvents, lowerUnit } from './abi.js';

const INTEREST_FLAGS = 2;

export function pollImports({ mem, host }: GlueContext) {
  // The token arrives as an i64: its halves, for the table's u32 arrays.
  const lo = (token: bigint) => Number(BigInt.asUintN(32, token));
  const hi = (token: bigint) => Number(BigInt.asUintN(32, token >> 32n));

  return {
    register(h: number, token: bigint, interest: number, retptr: number): void {
      mem.sync(); // first in every import with an effect: it also refuses a call from inside cabi_realloc
      // The canonical ABI lifts every argument before the call, whatever the handle.
      interest = liftFlags(interest, INTEREST_FLAGS, 'interest');
      lowerUnit(mem, retptr >>> 0, host.register(h, lo(token), hi(token), interest));
    },

    reregister(h: number, token: bigint, interest: number, retptr: number): void {
      mem.sync();
      interest = liftFlags(interest, INTEREST_FLAGS, 'interest');
      lowerUnit(mem, retptr >>> 0, host.reregister(h, lo(token), hi(token), interest));
    },

    deregister(h: number, retptr: number): void {
      mem.sync();
      lowerUnit(mem, retptr >>> 0, host.deregister(h));
    },

    wait(max: number, hasTimeout: number, timeoutMs: number, retptr: number): void {
      retptr >>>= 0;
      const timed = liftOption(hasTimeout, "wait's timeout");
      mem.sync();
      mem.checkArea(retptr, WAIT_RESULT.size, WAIT_RESULT.align);
      const count = host.wait(max >>> 0, timed ? timeoutMs >>> 0 : -1);
      lowerEvents(mem, retptr, host.events, count);
    },
  };
}
