// trap-at-start: a hostile test plugin that traps every time it starts.
//
// run() logs "trapping at start" and executes `unreachable` before it
// listens. Each incarnation dies at start; after 5 in a row the supervisor
// must stop the plugin with WASMUX_ERR_CRASH_LOOP (PluginServer.failed, and
// `wasmux run` exits non-zero naming that code) instead of restarting it
// forever.
//
// Used by test/hostile/crash-loop.test.ts.
import { Context, info, serve } from "../../sdk";
export * from "../../sdk/entry";

serve((ctx: Context): string | null => {
  info("trapping at start");
  unreachable();
  return null;
});
