// Wall-clock time at millisecond resolution, for protocols whose clients send
// absolute Unix times (Redis's SET ... PXAT, HTTP dates to the millisecond).
// time.ts's unixSeconds() drops the fraction; this keeps it.
//
// Use the monotonic clock (nowMillis) for timeouts and deadlines inside the
// plugin: the wall clock may jump. Convert an absolute time from a client to
// a monotonic deadline once, on arrival.

import { wall_now, DATETIME_SECONDS, DATETIME_NANOS } from "./bindings";
import { RET } from "./abi";

/** Milliseconds since the Unix epoch (wasi:clocks/wall-clock). */
export function unixMillis(): i64 {
  wall_now(RET);
  return <i64>load<u64>(RET + DATETIME_SECONDS) * 1000 + <i64>(load<u32>(RET + DATETIME_NANOS) / 1_000_000);
}
