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
import type { InstanceContext } from './context.js';
import { GuestTrap } from './traps.js';
import { pollImports } from './poll.js';
import { tcpImports } from './tcp.js';
import { logImports } from './log.js';
import { limitsImports } from './limits.js';
import { monotonicClockImports, wallClockImports } from './clocks.js';

/** What `run` receives: the WIT record `context`. */
export interface RunArguments {
  config: string;
  listen: readonly SocketAddress[];
  instance: number;
}

export function hostImports(ctx: InstanceContext): WebAssembly.Imports {
  return {
    'wasmux:plugin/poll@0.1.0': pollImports(ctx),
    'wasmux:plugin/tcp@0.1.0': tcpImports(ctx),
    'wasmux:plugin/log@0.1.0': logImports(ctx),
    'wasmux:plugin/limits@0.1.0': limitsImports(ctx),
    'wasi:clocks/monotonic-clock@0.2.0': monotonicClockImports(),
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

  constructor(module: WebAssembly.Module, private readonly ctx: InstanceContext) {
    const imports = PluginInstance.nameImports(hostImports(ctx));
    // The guest runs from here: instantiation runs its start function, if it
    // has one, so the watchdog covers it. Until attach() its imports trap.
    ctx.gate.startGuest();
    const instance = new WebAssembly.Instance(module, imports);
    this.exports = instance.exports;
    const memory = this.exports.memory;
    if (!(memory instanceof WebAssembly.Memory)) throw new GuestTrap('the plugin does not export its memory');
    const realloc = this.exports.cabi_realloc;
    ctx.mem.attach(memory, typeof realloc === 'function' ? (realloc as never) : null);
    ctx.gate.attached();
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
    // list<socket-address>: elements of size 20, align 2 (see tcp.ts lower()).
    const listPtr = mem.alloc(args.listen.length * 20, 2);
    args.listen.forEach((a, i) => {
      const at = listPtr + i * 20;
      mem.u8[at] = a.v6 ? 1 : 0;
      if (a.v6) for (let g = 0; g < 8; g++) mem.u16[(at + 2 + 2 * g) >>> 1] = a.groups[g]!;
      else for (let g = 0; g < 4; g++) mem.u8[at + 2 + g] = a.groups[g]!;
      mem.u16[(at + 18) >>> 1] = a.port;
    });

    const ret = run(cfg.ptr, cfg.len, listPtr, args.listen.length, args.instance) >>> 0;

    // result<_, string>: size 12, align 4; string (ptr, len) at 4.
    mem.sync();
    mem.checkArea(ret, 12, 4);
    const disc = mem.u8[ret];
    let result: string | null = null;
    if (disc === 1) result = mem.readString(mem.u32[(ret >>> 2) + 1]!, mem.u32[(ret >>> 2) + 2]!, 4096);
    else if (disc !== 0) throw new GuestTrap(`invalid result discriminant ${disc} from run`);
    const post = this.exports.cabi_post_run;
    if (typeof post === 'function') mem.callback(() => post(ret));
    return result;
  }
}
