/**
 * Host side of wasmux:plugin/handover@0.1.0 (wit/handover.wit), at the
 * core-wasm level: lift, call the instance's host
 * (sandbox/instance-host.ts), lower.
 *
 * give's state is read from guest memory (checked: a list beyond the
 * memory traps the guest, as for send); adopt's state is written into a
 * block the guest's cabi_realloc lends, as recv's bytes are.
 */
import type { GlueContext } from './context.js';
import { ADOPTED, lowerAdopted, lowerUnit } from './abi.js';

export function handoverImports({ mem, host }: GlueContext) {
  return {
    give(s: number, ptr: number, len: number, retptr: number): void {
      ptr >>>= 0;
      len >>>= 0;
      mem.sync();
      mem.check(ptr, len);
      lowerUnit(mem, retptr >>> 0, host.give(s, mem.u8.subarray(ptr, ptr + len)));
    },

    adopt(l: number, retptr: number): void {
      retptr >>>= 0;
      mem.sync();
      // Before the host moves a connection into the table: a bad return area traps with nothing taken.
      mem.checkArea(retptr, ADOPTED.size, ADOPTED.align);
      const r = host.adopt(l);
      let ptr = 0;
      let len = 0;
      if (r >= 0) {
        const state = host.adoptedState;
        len = state.length;
        ptr = mem.alloc(len, 1);
        mem.sync();
        mem.u8.set(state, ptr);
      }
      lowerAdopted(mem, retptr, r, ptr, len);
    },
  };
}
