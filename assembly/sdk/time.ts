import { monotonic_now, wall_now, DATETIME_SECONDS } from "./bindings";
import { RET } from "./abi";

/** Monotonic time in nanoseconds (wasi:clocks/monotonic-clock). */
export function nowNanos(): u64 {
  return monotonic_now();
}

/** Monotonic time in milliseconds. */
export function nowMillis(): u64 {
  return monotonic_now() / 1_000_000;
}

/** Seconds since the Unix epoch (wasi:clocks/wall-clock). */
export function unixSeconds(): u64 {
  wall_now(RET);
  return load<u64>(RET + DATETIME_SECONDS);
}
