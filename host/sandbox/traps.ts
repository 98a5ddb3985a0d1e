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
