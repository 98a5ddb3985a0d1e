// return-at-once: a hostile (or merely useless) test plugin whose entry
// point returns `ok` at once, without listening.
//
// The instance ends; it must not be restarted (returning is not a crash),
// and the host logs the end once.
//
// Used by test/hostile/return-at-once.test.ts.
import { Context, info, serve } from "../../sdk";
export * from "../../sdk/entry";

serve((ctx: Context): string | null => {
  info("returning at once");
  return null;
});
