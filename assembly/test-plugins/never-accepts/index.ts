// never-accepts: listens on its first address and then waits for ever
// without registering or accepting anything, so the connections clients
// open stay queued on its listening socket (handshake done, never accepted).
//
// Used by test/reload/queued-handover.test.ts: a reload from it must hand
// that socket, and its queue, to the new version (closing it would reset
// every queued connection).
import { Context, Events, Poll, TcpListener, errorName, info, lastError, serve } from "../../sdk";
export * from "../../sdk/entry";

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  info("listening, never accepting");
  const poll = new Poll();
  const events = new Events(1);
  while (true) poll.poll(events, -1);
  return null;
});
