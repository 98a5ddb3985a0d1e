/**
 * The ways a host function leaves the guest other than returning.
 *
 * GuestTrap: the guest broke the canonical ABI (a pointer outside its
 * memory, a misaligned return area, an out-of-range enum) or called an
 * import from its start function. Like a wasm trap, it ends the instance;
 * the error-code path is for what the OS or the network did, traps are for
 * what the guest did wrong.
 *
 * WatchdogKill: the supervisor killed the instance (its CPU budget, or a
 * stop that timed out) while its thread was where a kill cannot land at
 * once (see gate.ts); the thread unwinds the guest and ends itself.
 *
 * StopSignal: the host asked the instance to stop while it waited; thrown
 * out of `poll.wait` to unwind the guest's stack. Not an error.
 *
 * Each of them is final (see Gate.die): a guest that could catch one (the
 * loader refuses exception handling, so none can) still finds every later
 * gated call and every wait refused.
 */

/** Told of every GuestTrap as it is made: the instance's kill gate (one instance per thread). */
let trapObserver: ((trap: GuestTrap) => void) | null = null;

export function observeTraps(observer: (trap: GuestTrap) => void): void {
  trapObserver = observer;
}

export class GuestTrap extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestTrap';
    trapObserver?.(this);
  }
}

export class WatchdogKill extends Error {
  constructor() {
    super('killed by the supervisor during a host call');
    this.name = 'WatchdogKill';
  }
}

export class StopSignal extends Error {
  constructor() {
    super('instance stopped by the host');
    this.name = 'StopSignal';
  }
}

/**
 * The trap for an import called from the guest's start function, which runs
 * inside instantiation, before the host can know the guest's memory.
 * Which import it was is read off the stack (this is the cold path; the hot
 * path pays nothing for it): the JS frame the first wasm frame called, named
 * "interface#function" by PluginInstance.
 */
export function startFunctionTrap(): GuestTrap {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  const holder: { stack?: unknown } = {};
  let sites: NodeJS.CallSite[] = [];
  try {
    Error.stackTraceLimit = 64;
    Error.prepareStackTrace = (_e, callSites) => callSites;
    Error.captureStackTrace(holder, startFunctionTrap);
    // Read while prepareStackTrace is ours: V8 formats the stack on first read.
    if (Array.isArray(holder.stack)) sites = holder.stack as NodeJS.CallSite[];
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
  const first = sites.findIndex((s) => s.getFileName()?.startsWith('wasm://') ?? false);
  const name = first > 0 ? sites[first - 1]!.getFunctionName() : null;
  return new GuestTrap(`the plugin called ${name ?? 'an import'} from its start function, before the instance exists`);
}

/**
 * How an instance ended: its run returned ok / an error; the host stopped it;
 * it trapped (a wasm trap or an ABI violation); the watchdog killed it; the
 * thread failed for another reason (a host bug). The worker's exit message,
 * a simulation's and a replay's result.
 */
export type ExitReason = 'returned' | 'failed' | 'stopped' | 'trapped' | 'killed' | 'crashed';

/**
 * A guest that recursed past the thread's stack: V8 throws a RangeError, the
 * same one a host bug recursing without end would. It is the guest's when
 * the frames nearest the overflow are guest code (wasm) or the host called
 * from there; deep host recursion fills those frames with host code only.
 */
function isGuestStackOverflow(e: unknown): boolean {
  return e instanceof RangeError && e.message === 'Maximum call stack size exceeded' && (e.stack ?? '').includes('wasm://');
}

/**
 * The guest functions nearest a wasm trap, innermost first, as V8's stack
 * names them: only a module with a name section (the debug target) has
 * names, so a release build's message is unchanged. The names are the
 * guest's own strings: few and short (the log sink escapes them).
 */
const TRAP_FRAMES = 4;
const TRAP_FRAME_NAME_MAX = 80;
function guestFrames(e: Error): string {
  const names: string[] = [];
  for (const m of (e.stack ?? '').matchAll(/^\s*at (\S+) \(wasm:\/\//gm)) {
    names.push(m[1]!.length > TRAP_FRAME_NAME_MAX ? `${m[1]!.slice(0, TRAP_FRAME_NAME_MAX)}…` : m[1]!);
    if (names.length === TRAP_FRAMES) break;
  }
  return names.length === 0 ? '' : ` (in ${names.join(' < ')})`;
}

/**
 * Why an instance's run ended by a throw, and the message to log: one rule
 * for a worker, a simulation and a replay, so that a replayed trap says
 * exactly what the recorded one said. `memoryNote` says how much memory the
 * guest had (asked only for a wasm trap, which says just "unreachable" when an
 * allocator found memory.grow failing at the cap).
 */
export function describeEnd(e: unknown, memoryNote: () => string): { reason: ExitReason; message: string | null } {
  if (e instanceof StopSignal) return { reason: 'stopped', message: null };
  // The supervisor has already recorded why (its message is the one logged).
  if (e instanceof WatchdogKill) return { reason: 'killed', message: e.message };
  if (e instanceof WebAssembly.RuntimeError) return { reason: 'trapped', message: e.message + guestFrames(e) + memoryNote() };
  if (e instanceof GuestTrap) return { reason: 'trapped', message: e.message };
  if (isGuestStackOverflow(e)) return { reason: 'trapped', message: 'stack overflow' };
  return { reason: 'crashed', message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
}
