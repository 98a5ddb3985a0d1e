// Test plugin: registers every connection for READABLE | WRITABLE and never
// writes to it. Under the edge-triggered contract writable is reported once
// (the socket became writable), not on every wait: a backend that reported
// it again and again would make this loop spin. test/conformance.test.ts
// measures the server's CPU time while a connection sits here idle.
//
// Logs (the test's transcript): one line when a connection is registered,
// one when it ends, with the number of events it brought, bucketed.
import { Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, serve } from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 1 << 32;
// More events than this for one short connection would mean the backend
// repeats readiness that nobody consumed.
const FEW_EVENTS: u32 = 4;

class Conn {
  events: u32 = 0;
  bytes: u32 = 0;
  constructor(readonly stream: TcpStream, readonly id: u32) {}
}

const poll = new Poll();
const conns = new Array<Conn | null>();
const scratch = new Uint8Array(4096);

function main(ctx: Context): string | null {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  poll.register(listener, LISTENER, Interest.READABLE);
  const events = new Events(64);
  while (true) {
    const n = poll.poll(events);
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == LISTENER) {
        acceptAll(listener);
        continue;
      }
      const conn = conns[<i32>token];
      if (conn === null) continue;
      conn.events++;
      if (events.isReadable(i)) drain(conn);
    }
  }
  return null;
}

function acceptAll(listener: TcpListener): void {
  while (true) {
    const stream = listener.accept();
    if (stream === null) {
      if (lastError() != IoError.WouldBlock) info("accept failed: " + errorName(lastError()));
      return;
    }
    const conn = new Conn(stream, <u32>conns.length + 1);
    conns.push(conn);
    const rc = poll.register(stream, <u64>(conns.length - 1), Interest.BOTH);
    info("connection " + conn.id.toString() + ": registered readable|writable" + (rc < 0 ? " failed: " + errorName(rc) : ""));
  }
}

// Reads until would-block; never writes.
function drain(conn: Conn): void {
  while (true) {
    const n = conn.stream.read(scratch);
    if (n == IoError.WouldBlock) return;
    if (n <= 0) {
      const how = n == 0 ? "end of stream" : errorName(n);
      const few = conn.events <= FEW_EVENTS ? "at most " + FEW_EVENTS.toString() + " events" : conn.events.toString() + " events";
      info("connection " + conn.id.toString() + ": " + conn.bytes.toString() + " bytes, then " + how + "; " + few);
      conn.stream.close();
      conns[<i32>conn.id - 1] = null;
      return;
    }
    conn.bytes += <u32>n;
  }
}

serve(main);
