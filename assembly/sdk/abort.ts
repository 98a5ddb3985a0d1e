// The abort hook wasmux build points asc at (`--use abort=<this file>/abort`, host/build/plugin-build.ts).
import { log_log } from "./bindings";

let aborting = false;

/**
 * AssemblyScript's abort (failed assert, out-of-bounds access, out of
 * memory): log the reason through the host, then trap. The host ends this
 * instance and logs the trap.
 */
export function abort(message: string | null, file: string | null, line: u32, column: u32): void {
  // Logging allocates; an abort raised while logging (out of memory) traps at once.
  if (aborting) unreachable();
  aborting = true;
  const text = (message ? message : "abort") + " at " + (file ? file : "?") + ":" + line.toString() + ":" + column.toString();
  const b = String.UTF8.encode(text);
  log_log(4, changetype<usize>(b), <usize>b.byteLength);
  unreachable();
}
