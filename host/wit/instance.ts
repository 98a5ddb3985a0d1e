/**
 * The glue: instantiates a plugin's main core module with the host
 * functions of every interface and calls its `run` export, lowering and
 * lifting values by the canonical ABI of the plugin world (wit/world.wit).
 *
 * This replaces jco's generated glue on the hot path: each import here is a
 * plain function the guest calls directly (no per-call task bookkeeping),
 * and test/abi.test.ts checks it against stock jco output.
 */
import type { SocketAddress } from '../backends/address.js';
import { GuestTrap } from '../sandbox/traps.js';
import type { Gate } from '../sandbox/gate.js';
import type { GlueContext } from './context.js';
import { ADDRESS_ALIGN, ADDRESS_SIZE, liftRunResult, lowerAddress } from './abi.js';
import { pollImports } from './poll.js';
import { tcpImports } from './tcp.js';
import { logImports } from './log.js';
import { limitsImports } from './limits.js';
import { handoverImports } from './handover.js';
import { metricsImports } from './metrics.js';
import { monotonicClockImports, wallClockImports } from './clocks.js';

/** What `run` receives: the WIT record `context`. */
export interface RunArguments {
  config: string;
  listen: readonly SocketAddress[];
  instance: number;
}

/**
 * The import object: one entry per interface of the world, one function per
 * WIT function. Its names are the world's core imports exactly
 * (test/world-abi.test.ts checks them against host/generated/world-abi.ts,
 * which the loader checks every plugin's imports against).
 */
export function hostImports(ctx: GlueContext): WebAssembly.Imports {
  return {
    'wasmux:plugin/poll@0.1.0': pollImports(ctx),
    'wasmux:plugin/tcp@0.1.0': tcpImports(ctx),
    'wasmux:plugin/log@0.1.0': logImports(ctx),
    'wasmux:plugin/limits@0.1.0': limitsImports(ctx),
    'wasmux:plugin/handover@0.1.0': handoverImports(ctx),
    'wasmux:plugin/metrics@0.1.0': metricsImports(ctx),
    'wasi:clocks/monotonic-clock@0.2.0': monotonicClockImports(ctx),
    'wasi:clocks/wall-clock@0.2.0': wallClockImports(ctx),
  };
}

type RunExport = (cfgPtr: number, cfgLen: number, listPtr: number, listLen: number, instance: number) => number;

export class PluginInstance {
  private readonly exports: WebAssembly.Exports;

  /**
   * Names every host function "interface#function" (its `name`, which V8
   * puts in stack frames): a trap that has to say which import the guest
   * called reads it off the stack (traps.ts startFunctionTrap) instead of
   * every call carrying it.
   */
  private static nameImports(imports: WebAssembly.Imports): WebAssembly.Imports {
    for (const [iface, fns] of Object.entries(imports)) {
      for (const [name, fn] of Object.entries(fns)) {
        if (typeof fn === 'function') Object.defineProperty(fn, 'name', { value: `${iface}#${name}` });
      }
    }
    return imports;
  }

  constructor(
    module: WebAssembly.Module,
    private readonly ctx: GlueContext,
    gate: Gate,
  ) {
    const imports = PluginInstance.nameImports(hostImports(ctx));
    // The guest runs from here: instantiation runs its start function, if it
    // has one, so the watchdog covers it. Until attach() its imports trap.
    gate.startGuest();
    const instance = new WebAssembly.Instance(module, imports);
    this.exports = instance.exports;
    const memory = this.exports.memory;
    if (!(memory instanceof WebAssembly.Memory)) throw new GuestTrap('the plugin does not export its memory');
    const realloc = this.exports.cabi_realloc;
    ctx.mem.attach(memory, typeof realloc === 'function' ? (realloc as never) : null);
    gate.attached();
  }

  /** Runs `_initialize` (top-level code), if the plugin has any. */
  initialize(): void {
    const init = this.exports._initialize;
    if (typeof init === 'function') init();
  }

  /** Calls `run(ctx)`; returns null on `ok`, the plugin's message on `err`. */
  run(args: RunArguments): string | null {
    const run = this.exports.run as RunExport | undefined;
    if (typeof run !== 'function') throw new GuestTrap('the plugin does not export run');
    const { mem } = this.ctx;

    const cfg = mem.writeString(args.config);
    // The context flattens to (config, listen, instance); listen is a list<socket-address>.
    const listPtr = mem.alloc(args.listen.length * ADDRESS_SIZE, ADDRESS_ALIGN);
    args.listen.forEach((a, i) => lowerAddress(mem, listPtr + i * ADDRESS_SIZE, a));

    const ret = run(cfg.ptr, cfg.len, listPtr, args.listen.length, args.instance) >>> 0;
    const result = liftRunResult(mem, ret, 4096);
    const post = this.exports.cabi_post_run;
    if (typeof post === 'function') mem.callback(() => post(ret));
    return result;
  }
}
