// Test plugin: deregister and reregister, driven step by step by
// test/conformance.test.ts, which waits for each log line before its next
// move. Connection A is the one under test; connection B only says "go".
//
//   1. A registered for readable; the client sends "hello".
//   2. A readable: not read; reregister -> the next wait reports A again
//      (readiness present at reregister is a new edge).
//   3. A read until would-block; deregister; deregister and reregister
//      again both say `closed`. The client sends "world!" on A, then
//      connects B and sends "go".
//   4. On B's "go" (A's data is in A's buffer by then): three waits of
//      100 ms bring no event for A.
//   5. register A again: the next wait reports the pending data; read it.
//   Then the plugin returns (the process exits 0).
import { Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, serve } from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 100;
const TOKEN_A: u64 = 1;
const TOKEN_B: u64 = 2;

const poll = new Poll();
const events = new Events(16);
const scratch = new Uint8Array(4096);
let a: TcpStream | null = null;
let b: TcpStream | null = null;
let step = 1;

// Reads until would-block; returns the byte count (or the error, negative).
function drain(s: TcpStream): i32 {
  let total = 0;
  while (true) {
    const n = s.read(scratch);
    if (n == IoError.WouldBlock) return total;
    if (n <= 0) return n == 0 ? total : n;
    total += n;
  }
}

function main(ctx: Context): string | null {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  poll.register(listener, LISTENER, Interest.READABLE);
  while (step < 4) {
    const n = poll.poll(events, 10_000);
    if (n == 0) return "step " + step.toString() + ": no event within 10 s";
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == LISTENER) {
        // Accept until would-block: only then is the next connection an event.
        for (let s = listener.accept(); s !== null; s = listener.accept()) {
          if (a === null) {
            a = s;
            poll.register(s, TOKEN_A, Interest.READABLE);
            info("a: registered for readable");
          } else {
            b = s;
            poll.register(s, TOKEN_B, Interest.READABLE);
          }
        }
      } else if (token == TOKEN_A && step == 1) {
        const rc = poll.reregister(a!, TOKEN_A, Interest.READABLE);
        info("a: readable; reregistered without reading: " + errorName(rc));
        step = 2;
      } else if (token == TOKEN_A && step == 2) {
        info("a: readable again after reregister; read " + drain(a!).toString() + " bytes");
        info("a: deregister: " + errorName(poll.deregister(a!)));
        info("a: deregister again: " + errorName(poll.deregister(a!)) +
          "; reregister while deregistered: " + errorName(poll.reregister(a!, TOKEN_A, Interest.READABLE)));
        step = 3;
      } else if (token == TOKEN_A) {
        return "a: event while deregistered (step " + step.toString() + ")";
      } else if (token == TOKEN_B && step == 3) {
        drain(b!);
        step = 4;
      }
    }
  }

  // Step 4: A's data has arrived; A must stay silent.
  let quiet = 0;
  for (let w = 0; w < 3; w++) {
    const n = poll.poll(events, 100);
    for (let i: u32 = 0; i < n; i++) if (events.token(i) == TOKEN_A) quiet++;
  }
  info("a: " + quiet.toString() + " events in 3 waits while deregistered with data pending");

  // Step 5: registering again reports what is pending.
  info("a: register again: " + errorName(poll.register(a!, TOKEN_A, Interest.READABLE)));
  let seen = false;
  for (let w = 0; w < 20 && !seen; w++) {
    const n = poll.poll(events, 100);
    for (let i: u32 = 0; i < n; i++) if (events.token(i) == TOKEN_A) seen = true;
  }
  info(seen ? "a: readable after register; read " + drain(a!).toString() + " bytes" : "a: no event within 2 s of register");
  a!.close();
  b!.close();
  listener.close();
  return null;
}

serve(main);
