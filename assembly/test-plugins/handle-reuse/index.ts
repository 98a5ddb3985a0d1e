// Test plugin: a closed handle is dead for good, and its slot's next handle
// is a different value that works. Driven by test/conformance.test.ts:
//
//   1. The first connection is registered; the client sends a byte.
//   2. On that readable event the handle is closed without reading, then
//      every operation on the old value must say bad-handle.
//   3. The second connection reuses the slot (the table is LIFO) under a new
//      handle value; it must work (echo "ping"), and no event may arrive
//      for the first connection's token.
//   Then the plugin returns (the process exits 0).
import { Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, serve } from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 100;
const TOKEN_FIRST: u64 = 1;
const TOKEN_SECOND: u64 = 2;
// A handle is slot | generation << index bits; the default policy's table
// (1,024 connections, one listener, 64 in flight, 4 reserved: 1,093 slots)
// has 11 index bits (host/sandbox/handle-table.ts).
const SLOT_MASK: u32 = (1 << 11) - 1;

const poll = new Poll();
const events = new Events(16);
const scratch = new Uint8Array(256);
let staleEvents = 0;

function countStale(n: u32): void {
  for (let i: u32 = 0; i < n; i++) if (events.token(i) == TOKEN_FIRST) staleEvents++;
}

function main(ctx: Context): string | null {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  poll.register(listener, LISTENER, Interest.READABLE);
  let first: TcpStream | null = null;
  let oldHandle: u32 = 0;
  while (true) {
    const n = poll.poll(events, 10_000);
    if (n == 0) return "no event within 10 s";
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == TOKEN_FIRST) {
        if (first === null) { staleEvents++; continue; }
        oldHandle = first.handle;
        info("first: close: " + errorName(first.close()));
        first = null;
        const old = new TcpStream(oldHandle);
        info("old handle after close: recv " + errorName(old.read(scratch)) +
          ", send " + errorName(old.writeString("x")) +
          ", register " + errorName(poll.register(old, 9, Interest.READABLE)) +
          ", deregister " + errorName(poll.deregister(old)) +
          ", close " + errorName(old.close()));
      } else if (token == LISTENER) {
        // One connection at a time (the test waits between them), but accept
        // until would-block all the same: only then is the next one an event.
        const s = listener.accept();
        if (s === null) continue;
        const extra = listener.accept();
        if (extra !== null) return "a second connection was pending at once";
        if (oldHandle == 0) {
          first = s;
          info("first: accepted and registered: " + errorName(poll.register(s, TOKEN_FIRST, Interest.READABLE)));
          continue;
        }
        info("second: same slot " + ((s.handle & SLOT_MASK) == (oldHandle & SLOT_MASK) ? "yes" : "no") +
          ", same handle value " + (s.handle == oldHandle ? "yes" : "no") +
          ", register: " + errorName(poll.register(s, TOKEN_SECOND, Interest.READABLE)));
        const got = echoUntilEnd(s);
        info("second: echoed " + got.toString() + " bytes; events for the closed handle's token: " + staleEvents.toString());
        s.close();
        listener.close();
        return null;
      }
    }
  }
  return null;
}

// Echoes on `s` until the peer ends, waiting for events between reads.
function echoUntilEnd(s: TcpStream): i32 {
  let total = 0;
  while (true) {
    const n = s.read(scratch);
    if (n == IoError.WouldBlock) {
      const ready = poll.poll(events, 10_000);
      if (ready == 0) return total;
      countStale(ready);
      continue;
    }
    if (n <= 0) return total;
    let off = 0;
    while (off < n) {
      const w = s.write(scratch, off, n - off);
      if (w == IoError.WouldBlock) { countStale(poll.poll(events, 100)); continue; }
      if (w < 0) return total;
      off += w;
    }
    total += n;
  }
}

serve(main);
