// Test plugin: poll.wait with nothing registered must return after its
// timeout, neither early nor late. Waits 10, 50 and 200 ms three times each
// (and once with 0: must not block), logs how long each took in
// microseconds, then returns (the process exits 0). test/conformance.test.ts
// checks the durations.
import { Context, Events, Poll, TcpListener, errorName, info, lastError, nowNanos, serve } from "../../sdk";
export * from "../../sdk/entry";

const TIMEOUTS: StaticArray<i32> = [0, 10, 50, 200];
const REPEAT = 3;

function main(ctx: Context): string | null {
  // Listening (but not registered) is what tells the host this instance is up.
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const poll = new Poll();
  const events = new Events(8);
  poll.poll(events, 1); // warm-up: the first call also compiles the host's code
  for (let t = 0; t < TIMEOUTS.length; t++) {
    for (let r = 0; r < REPEAT; r++) {
      const start = nowNanos();
      const n = poll.poll(events, TIMEOUTS[t]);
      const us = (nowNanos() - start) / 1000;
      info("wait " + TIMEOUTS[t].toString() + " ms: " + n.toString() + " events in " + us.toString() + " us");
    }
  }
  listener.close();
  return null;
}

serve(main);
