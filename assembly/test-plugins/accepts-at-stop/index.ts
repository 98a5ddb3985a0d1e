// accepts-at-stop: listens and registers its listener, but accepts nothing
// until the host drains the instance (the listener reports hang-up). Then it
// accepts every connection the host still hands out, answers each with
// "served <what it sent>" and closes it, and returns.
//
// Used by test/drain/queued-at-stop.test.ts: on a stop, connections queued
// in the kernel (handshake done, never accepted) must be taken by the host
// before it closes the listener, reported readable before the hang-up, and
// accepted here, not reset.
//
// Logs: "readable before hang-up: yes|no", "accepted N at the hang-up" and
// "accepted N while draining" (in all, at the end, if the host has not
// stopped it first: a drain ends once no connection is open).
import { Context, Events, Interest, Poll, TcpListener, TcpStream, errorName, info, lastError, serve } from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 1;
const scratch = new Uint8Array(4096);

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const poll = new Poll();
  poll.register(listener, LISTENER, Interest.READABLE);
  info("listening, accepting only at the hang-up");
  const events = new Events(16);
  let readable = false;
  let draining = false;
  let accepted = 0;
  while (true) {
    // Draining: what the host still hands out comes within a second, or the plugin is done.
    const n = poll.poll(events, draining ? 1000 : -1);
    if (n == 0 && draining) {
      info("accepted " + accepted.toString() + " while draining");
      return null;
    }
    for (let i: u32 = 0; i < n; i++) {
      if (events.token(i) != LISTENER) continue;
      if (!events.isHangUp(i)) {
        readable = readable || events.isReadable(i);
        if (!draining) continue;
      } else {
        info("readable before hang-up: " + (readable ? "yes" : "no"));
        draining = true;
      }
      while (true) {
        const s = listener.accept();
        if (s === null) break;
        accepted++;
        answer(s);
      }
      if (events.isHangUp(i)) info("accepted " + accepted.toString() + " at the hang-up");
    }
  }
  return null;
});

// Blocking enough for a test: the client wrote its line before the stop.
function answer(s: TcpStream): void {
  let got = 0;
  for (let tries = 0; tries < 1000 && got == 0; tries++) {
    const r = s.read(scratch);
    if (r > 0) got = r;
  }
  s.writeString("served " + String.UTF8.decode(scratch.buffer.slice(0, got)));
  s.close();
}
