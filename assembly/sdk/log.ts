import { log_log } from "./bindings";
import { Level } from "./generated/contract";

/** Log levels: the WIT `level` enum (generated from wit/log.wit). */
export { Level } from "./generated/contract";

/** Writes one log line through the host (tagged with plugin and instance). */
export function log(level: Level, message: string): void {
  const b = String.UTF8.encode(message);
  log_log(<u32>level, changetype<usize>(b), <usize>b.byteLength);
}

export function info(message: string): void { log(Level.Info, message); }
export function warn(message: string): void { log(Level.Warn, message); }
export function error(message: string): void { log(Level.Error, message); }
export function debug(message: string): void { log(Level.Debug, message); }
