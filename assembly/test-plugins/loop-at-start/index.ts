// loop-at-start: a hostile test plugin that never reaches poll.wait.
//
// run() logs "looping since <ns>" (the monotonic clock, which the host reads
// from CLOCK_MONOTONIC like process.hrtime in any thread or process of this
// machine) and then spins forever, before it listens. The supervisor's
// watchdog must kill it once it has run cpuBudgetMs without returning to
// poll.wait; every incarnation does the same, so after 5 deaths at start the
// plugin is given up on with WASMUX_ERR_CRASH_LOOP.
//
// Used by test/hostile/loop-at-start.test.ts.
import { Context, info, nowNanos, serve } from "../../sdk";
export * from "../../sdk/entry";

// The loop stores to memory so that no optimizer can call it side-effect free.
const SPIN: usize = memory.data(8, 8);

serve((ctx: Context): string | null => {
  info("looping since " + nowNanos().toString());
  while (true) store<u64>(SPIN, load<u64>(SPIN) + 1);
  return null;
});
