/**
 * Host side of wasmux:plugin/poll@0.1.0 (wit/poll.wit), at the core-wasm
 * level: each function takes the flattened canonical-ABI arguments and
 * writes its result at `retptr`, exactly as assembly/sdk/bindings.ts calls it.
 */
import { ErrorCode, READY_ERROR, READY_HANG_UP, READY_READABLE, READY_READ_CLOSED, READY_WRITABLE, fail, codeOf } from './error-code.js';
import { CTRL_IN_WAIT, CTRL_STOP, STAT_EVENTS, STAT_WAITS, type InstanceContext } from './context.js';
import { StopSignal, GuestTrap } from './traps.js';

const EVENT_SIZE = 16; // record event { token: u64, ready: readiness }: size 16, align 8
const MAX_WAIT_MS = 0x7fffffff;

export function pollImports(ctx: InstanceContext) {
  const { mem, table, backend, control, stats } = ctx;
  const maxEvents = ctx.limits.maxEventsPerWait;
  const out = new Uint32Array(2 * maxEvents);
  const stop = new StopSignal();

  // result<_, error-code>: size 2, align 1.
  function unit(retptr: number, r: number): void {
    mem.sync();
    mem.checkArea(retptr, 2, 1);
    if (r >= 0) {
      mem.u8[retptr] = 0;
    } else {
      mem.u8[retptr] = 1;
      mem.u8[retptr + 1] = codeOf(r);
    }
  }

  function setInterest(slot: number, token: bigint, interest: number, again: boolean): number {
    interest >>>= 0;
    if (interest > 3) throw new GuestTrap(`invalid interest flags ${interest}`);
    if (interest === 0) return fail(ErrorCode.Invalid);
    if (again !== (table.registered[slot] === 1)) return fail(ErrorCode.Closed);
    const fd = table.fds[slot]!;
    const key = table.handleOf(slot);
    const r = again ? backend.reregister(fd, key, interest) : backend.register(fd, key, interest);
    if (r < 0) return r;
    table.registered[slot] = 1;
    table.interest[slot] = interest;
    table.tokenLo[slot] = Number(BigInt.asUintN(32, token));
    table.tokenHi[slot] = Number(BigInt.asUintN(32, token >> 32n));
    // Unknown until the OS says otherwise; the re-arm may also bring an event.
    table.readReady[slot] = 1;
    table.writeReady[slot] = 1;
    return 0;
  }

  return {
    register(h: number, token: bigint, interest: number, retptr: number): void {
      const slot = table.lookup(h);
      unit(retptr >>> 0, slot < 0 ? fail(ErrorCode.BadHandle) : setInterest(slot, token, interest, false));
    },

    reregister(h: number, token: bigint, interest: number, retptr: number): void {
      const slot = table.lookup(h);
      unit(retptr >>> 0, slot < 0 ? fail(ErrorCode.BadHandle) : setInterest(slot, token, interest, true));
    },

    deregister(h: number, retptr: number): void {
      const slot = table.lookup(h);
      let r: number;
      if (slot < 0) r = fail(ErrorCode.BadHandle);
      else if (table.registered[slot] === 0) r = fail(ErrorCode.Closed);
      else {
        r = backend.deregister(table.fds[slot]!);
        table.registered[slot] = 0;
      }
      unit(retptr >>> 0, r);
    },

    wait(max: number, hasTimeout: number, timeoutMs: number, retptr: number): void {
      retptr >>>= 0;
      mem.sync();
      mem.checkArea(retptr, 8, 4);
      max = Math.min(Math.max(max >>> 0, 1), maxEvents);
      let timeout = hasTimeout ? Math.min(timeoutMs >>> 0, MAX_WAIT_MS) : -1;
      const deadline = timeout > 0 ? performance.now() + timeout : 0;
      let n: number;
      for (;;) {
        if (Atomics.load(control, CTRL_STOP) !== 0) throw stop;
        Atomics.store(control, CTRL_IN_WAIT, 1);
        n = backend.wait(out, max, timeout);
        Atomics.store(control, CTRL_IN_WAIT, 0);
        if (Atomics.load(control, CTRL_STOP) !== 0) throw stop;
        if (n !== 0 || timeout === 0) break;
        // Nothing: a timeout, or a wake-up with nothing to report. Only a
        // timeout that has really passed ends the call.
        if (timeout > 0) {
          timeout = Math.ceil(deadline - performance.now());
          if (timeout <= 0) break;
        }
      }
      if (n < 0) n = 0; // the backend already logged nothing: an EINTR-like failure
      stats[STAT_WAITS]++;

      // Translate (key, readiness) into (token, readiness), dropping events of
      // handles closed since they were registered (stale keys).
      let count = 0;
      for (let i = 0; i < n; i++) {
        const slot = table.lookup(out[2 * i]!);
        if (slot < 0 || table.registered[slot] === 0) continue;
        const ready = out[2 * i + 1]!;
        if (ready & READY_READABLE) table.readReady[slot] = 1;
        if (ready & READY_WRITABLE) table.writeReady[slot] = 1;
        if (ready & (READY_READ_CLOSED | READY_HANG_UP | READY_ERROR)) table.peerClosed[slot] = 1;
        out[2 * count] = slot;
        out[2 * count + 1] = ready;
        count++;
      }
      stats[STAT_EVENTS] += count;

      const ptr = mem.alloc(count * EVENT_SIZE, 8);
      const u32 = mem.u32;
      const u8 = mem.u8;
      for (let i = 0; i < count; i++) {
        const slot = out[2 * i]!;
        const at = ptr + i * EVENT_SIZE;
        u32[at >>> 2] = table.tokenLo[slot]!;
        u32[(at >>> 2) + 1] = table.tokenHi[slot]!;
        u8[at + 8] = out[2 * i + 1]!;
      }
      u32[retptr >>> 2] = ptr;
      u32[(retptr >>> 2) + 1] = count;
    },
  };
}
