// adopts-never: opts in to live handover (one handover.adopt on its
// listener as it starts) and then never adopts: it only accepts. The
// connections handed to it wait for it until the host's adopt deadline
// closes them.
//
// Used by test/handover/deadline.test.ts.
import { Context, Events, Interest, Poll, TcpListener, errorName, info, lastError, serve } from "../../sdk";
import { adoptError, adoptOn } from "../../sdk/handover";
export * from "../../sdk/entry";

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const first = adoptOn(listener);
  info("opted in: " + (first === null ? errorName(adoptError()) : "adopted one"));
  const poll = new Poll();
  const events = new Events(16);
  poll.register(listener, 0, Interest.READABLE);
  for (let turn = 0; turn < 1_000_000; turn++) {
    poll.poll(events, -1);
    for (let s = listener.accept(); s !== null; s = listener.accept()) s.close();
  }
  return null;
});
