/**
 * Host side of wasmux:plugin/poll@0.1.0 (wit/poll.wit), at the core-wasm
 * level: each function takes the flattened canonical-ABI arguments and
 * writes its result at `retptr`, exactly as assembly/sdk/bindings.ts calls it.
 */
import { ErrorCode, READY_ERROR, READY_HANG_UP, READY_READABLE, READY_READ_CLOSED, READY_WRITABLE } from '../generated/contract.js';
import { fail, codeOf } from '../backends/backend.js';
import { CTRL_DRAIN, CTRL_STOP, STAT_EVENTS, STAT_IDLE_CLOSED, STAT_WAITS, type InstanceContext } from './context.js';
import { KIND_DRAINED, KIND_LISTENER, KIND_STREAM, NO_FD } from '../sandbox/handle-table.js';
import { StopSignal, GuestTrap } from './traps.js';

const EVENT_SIZE = 16; // record event { token: u64, ready: readiness }: size 16, align 8
const MAX_WAIT_MS = 0x7fffffff;

export function pollImports(ctx: InstanceContext) {
  const { mem, table, backend, control, stats, logLimit, gate } = ctx;
  const maxEvents = ctx.limits.maxEventsPerWait;
  const out = new Uint32Array(2 * maxEvents);
  const stop = new StopSignal();
  const { clock } = ctx;
  const idleMs = ctx.limits.idleTimeoutMs;
  // Idle connections are found by a sweep at most every second (a quarter of
  // the timeout when that is shorter): O(open handles) per sweep, nothing per call.
  const sweepEveryMs = idleMs > 0 ? Math.max(10, Math.min(1000, Math.floor(idleMs / 4))) : 0;
  let nextSweep = performance.now() + sweepEveryMs;
  let drained = false;

  // Shut down (both ways) every stream without traffic for idleMs. The guest
  // sees end of stream / hang-up on its next wait and closes the handle.
  function sweepIdle(now: number): void {
    nextSweep = now + sweepEveryMs;
    for (const slot of table.openSlots()) {
      if (table.kind[slot] !== KIND_STREAM || table.idleShut[slot] || now - table.active[slot]! < idleMs) continue;
      table.idleShut[slot] = 1;
      backend.shutdown(table.fds[slot]!, 2);
      stats[STAT_IDLE_CLOSED]++;
    }
  }

  // Draining: close every listener (no new connections), keep the handles
  // valid so the guest's accept just says would-block; open streams go on.
  // It closes descriptors: called inside the kill gate.
  function drainListeners(): void {
    drained = true;
    for (const slot of table.openSlots()) {
      if (table.kind[slot] !== KIND_LISTENER) continue;
      const fd = table.fds[slot]!;
      table.fds[slot] = NO_FD;
      table.kind[slot] = KIND_DRAINED;
      table.registered[slot] = 0;
      backend.closeSocket(fd);
    }
  }

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

  // Lifts the `interest` flags: bits outside the two flags trap, as the
  // canonical ABI lifts every argument before the call, whatever the handle.
  function liftInterest(interest: number): number {
    interest >>>= 0;
    if (interest > 3) throw new GuestTrap(`invalid interest flags ${interest}`);
    return interest;
  }

  function setInterest(slot: number, token: bigint, interest: number, again: boolean): number {
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
      mem.sync(); // see tcp.ts listen
      interest = liftInterest(interest);
      const slot = table.lookup(h);
      unit(retptr >>> 0, slot < 0 ? fail(ErrorCode.BadHandle) : setInterest(slot, token, interest, false));
    },

    reregister(h: number, token: bigint, interest: number, retptr: number): void {
      mem.sync(); // see tcp.ts listen
      interest = liftInterest(interest);
      const slot = table.lookup(h);
      unit(retptr >>> 0, slot < 0 ? fail(ErrorCode.BadHandle) : setInterest(slot, token, interest, true));
    },

    deregister(h: number, retptr: number): void {
      mem.sync(); // see tcp.ts listen
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
      hasTimeout >>>= 0;
      if (hasTimeout > 1) throw new GuestTrap(`invalid option discriminant ${hasTimeout} for wait's timeout`);
      mem.sync();
      mem.checkArea(retptr, 8, 4);
      max = Math.min(Math.max(max >>> 0, 1), maxEvents);
      let now = performance.now();
      const timeout = Math.min(timeoutMs >>> 0, MAX_WAIT_MS);
      const deadline = hasTimeout ? now + timeout : Infinity;
      let n: number;
      for (;;) {
        if (Atomics.load(control, CTRL_STOP) !== 0) throw gate.die(stop);
        if (control[CTRL_DRAIN] !== 0 && !drained) {
          gate.enter();
          drainListeners();
          gate.leave();
        }
        // Block until the guest's deadline, but wake for the idle sweep.
        // Never more than the guest asked for: (now + t) - now can round to a hair over t.
        let slice = deadline === Infinity ? -1 : Math.min(timeout, Math.max(0, Math.ceil(deadline - now)));
        if (sweepEveryMs > 0 && (slice < 0 || slice > sweepEveryMs)) slice = sweepEveryMs;
        // Log lines were suppressed: write their summary when due, even if the guest has gone quiet.
        if (logLimit.summaryDue !== Infinity) slice = logLimit.wakeForSummary(now, slice);
        // Refused once the instance is dead (a trap is final): it never blocks again.
        gate.enterWait();
        n = backend.wait(out, max, slice);
        now = performance.now();
        clock.nowMs = now;
        // The guest may run again from here: the watchdog measures from this tick.
        gate.leaveWait(now);
        if (Atomics.load(control, CTRL_STOP) !== 0) throw gate.die(stop);
        if (sweepEveryMs > 0 && now >= nextSweep) sweepIdle(now);
        // Nothing yet (a sweep, a wake-up, an early return): only events or
        // the guest's own deadline end the call.
        if (n !== 0 || now >= deadline) break;
      }
      if (n < 0) n = 0; // an interrupted wait: report nothing
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
