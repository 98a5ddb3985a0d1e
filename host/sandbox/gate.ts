/**
 * The kill gate: one word of shared memory, control[CTRL_STATE], saying what
 * an instance's thread is doing, so that the supervisor never terminates it
 * inside a host call that opens or closes a descriptor. Terminated between
 * socket() and the registry's record of the new socket, or between clearing
 * a record and close(), the thread would leave a descriptor that nobody
 * knows of: open for good, perhaps still listening on the plugin's port.
 *
 * The word is a mode (low two bits) and two sticky flags:
 *
 *   HOST   the host runs: the thread booting, a gated call (listen, accept,
 *          connect, close, draining the listeners), closing up at the end.
 *          Charged by the watchdog, but a kill only raises KILL: the thread
 *          ends itself when it leaves the gate.
 *   GUEST  the guest runs, or host code that may call into it (recv's
 *          cabi_realloc): charged, terminated at once when killed.
 *   WAIT   blocked in the backend's wait: not charged; stop()'s last resort
 *          may terminate it.
 *   START  instantiation, where a start function runs: charged and
 *          killable like GUEST; imports trap (there is no instance yet).
 *   KILL   the supervisor killed the instance. Raised in any mode but HOST,
 *          the thread is being terminated; in HOST, it is to end itself.
 *   DEAD   the instance trapped (or was stopped): final, every later gated
 *          call and every wait throws the first cause again.
 *
 * Every move of the worker's is a compareExchange from one exact value, so
 * a flag the supervisor raised makes it fail: on the way into a gated call
 * the thread throws before any system call, on the way out it throws once
 * the registry is consistent again. The supervisor's kill reads the mode it
 * flagged, so exactly one of the two ends the thread. recv, send, shutdown,
 * the addresses, register, log and the clocks create no descriptor and stay
 * outside the gate (their cost is unchanged).
 */
import { CTRL_RUN_SEQ, CTRL_STATE, STAT_RUN_STARTED_AT } from './shared.js';
import { WatchdogKill, observeTraps, startFunctionTrap } from './traps.js';

const MODE = 3;
export const MODE_HOST = 0; // the initial value of the shared word: a thread boots in HOST
export const MODE_GUEST = 1;
export const MODE_WAIT = 2;
export const MODE_START = 3;
export const FLAG_KILL = 4;
export const FLAG_DEAD = 8;

/** The mode of a state word (MODE_*). */
export function modeOf(state: number): number {
  return state & MODE;
}

/** The worker's side of the gate, for its one instance. */
export class Gate {
  private cause: Error | null = null;
  private readonly origin = performance.timeOrigin;

  constructor(
    private readonly control: Int32Array,
    private readonly stats: Float64Array,
  ) {
    observeTraps((trap) => this.die(trap));
  }

  /**
   * Right before instantiation: from here the guest may run (a start
   * function), so the watchdog's clock starts here, not at `run`.
   */
  startGuest(): void {
    this.stats[STAT_RUN_STARTED_AT] = this.origin + performance.now();
    Atomics.add(this.control, CTRL_RUN_SEQ, 1);
    if (Atomics.compareExchange(this.control, CTRL_STATE, MODE_HOST, MODE_START) !== MODE_HOST) throw this.refused();
  }

  /** The instance exists (its memory is attached): imports work from here on. */
  attached(): void {
    if (Atomics.compareExchange(this.control, CTRL_STATE, MODE_START, MODE_GUEST) !== MODE_START) throw this.refused();
  }

  /** Into a call that opens or closes a descriptor: until leave(), a kill waits. */
  enter(): void {
    if (Atomics.compareExchange(this.control, CTRL_STATE, MODE_GUEST, MODE_HOST) !== MODE_GUEST) throw this.refused();
  }

  /** Out of it, the registry consistent again: a kill raised meanwhile lands here. */
  leave(): void {
    if (Atomics.compareExchange(this.control, CTRL_STATE, MODE_HOST, MODE_GUEST) !== MODE_HOST) throw this.refused();
  }

  /** Into the backend's wait: the watchdog stops charging. */
  enterWait(): void {
    if (Atomics.compareExchange(this.control, CTRL_STATE, MODE_GUEST, MODE_WAIT) !== MODE_GUEST) throw this.refused();
  }

  /**
   * Out of the backend's wait at `nowMs` (performance.now()): a new run.
   * Its stamp and number are written first, so a watchdog that sees GUEST
   * measures this run, not the one before the wait.
   */
  leaveWait(nowMs: number): void {
    this.stats[STAT_RUN_STARTED_AT] = this.origin + nowMs;
    Atomics.add(this.control, CTRL_RUN_SEQ, 1);
    if (Atomics.compareExchange(this.control, CTRL_STATE, MODE_WAIT, MODE_GUEST) !== MODE_WAIT) throw this.refused();
  }

  /** Makes the instance dead with `cause` (the first one sticks); returns `cause` for the caller to throw. */
  die<E extends Error>(cause: E): E {
    this.cause ??= cause;
    Atomics.or(this.control, CTRL_STATE, FLAG_DEAD);
    return cause;
  }

  /**
   * The thread's last act, closing what the guest left open, runs in HOST so
   * that no kill cuts it short. Returns false when a kill already owns the
   * thread's end (it is being terminated): then it must touch nothing, and
   * the supervisor closes every recorded descriptor once the thread is gone.
   */
  closing(): boolean {
    for (;;) {
      const s = Atomics.load(this.control, CTRL_STATE);
      if (modeOf(s) === MODE_HOST) return true; // a kill raised in HOST: this thread ends itself
      if (s & FLAG_KILL) return false;
      if (Atomics.compareExchange(this.control, CTRL_STATE, s, (s & ~MODE) | MODE_HOST) === s) return true;
    }
  }

  // Why a move failed (the cold path).
  private refused(): Error {
    const s = Atomics.load(this.control, CTRL_STATE);
    if (s & FLAG_KILL) return new WatchdogKill();
    if (s & FLAG_DEAD && this.cause !== null) return this.cause;
    if (modeOf(s) === MODE_START) return startFunctionTrap();
    return new Error(`kill gate: unexpected state ${s}`);
  }
}

/**
 * The supervisor's side: marks the instance killed. Returns true when its
 * thread may be terminated now, false when it is inside a gated call (HOST):
 * it ends itself, with a WatchdogKill, as it leaves the call.
 */
export function requestKill(control: Int32Array): boolean {
  for (;;) {
    const s = Atomics.load(control, CTRL_STATE);
    if (s & FLAG_KILL || Atomics.compareExchange(control, CTRL_STATE, s, s | FLAG_KILL) === s) return modeOf(s) !== MODE_HOST;
  }
}

/** Whether the watchdog charges a thread in `state` for its CPU (all but WAIT). */
export function charged(state: number): boolean {
  return modeOf(state) !== MODE_WAIT;
}
