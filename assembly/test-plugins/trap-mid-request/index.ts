// trap-mid-request: a hostile test plugin that traps in the middle of
// serving a request.
//
// A line-oriented server: each connection sends lines; the plugin answers a
// line with the same line, except the line "trap", after which it logs
// "trapping mid-request" and executes `unreachable` while that connection
// (and any other) is open. The host must log the trap once, close every
// descriptor the instance held (its clients see the connection end) and
// restart it.
//
// Used by test/hostile/trap-mid-request.test.ts.
import { Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, serve } from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 0xffff_ffff;

class Conn {
  line: string = "";
  constructor(readonly stream: TcpStream) {}
}

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const poll = new Poll();
  poll.register(listener, LISTENER, Interest.READABLE);
  info("listening on " + ctx.listen[0].toString());
  const events = new Events(64);
  const conns = new Map<u64, Conn>();
  const buf = new Uint8Array(4096);
  while (true) {
    const n = poll.poll(events);
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == LISTENER) {
        while (true) {
          const s = listener.accept();
          if (s === null) break;
          conns.set(<u64>s.handle, new Conn(s));
          poll.register(s, <u64>s.handle, Interest.READABLE);
        }
        continue;
      }
      if (!conns.has(token)) continue;
      const c = conns.get(token);
      while (true) {
        const r = c.stream.read(buf);
        if (r == IoError.WouldBlock) break;
        if (r <= 0) {
          c.stream.close();
          conns.delete(token);
          break;
        }
        for (let k = 0; k < r; k++) {
          const ch = buf[k];
          if (ch != 10) {
            c.line += String.fromCharCode(ch);
            continue;
          }
          if (c.line == "trap") {
            info("trapping mid-request");
            unreachable();
          }
          // Short replies on loopback: one send takes them whole.
          c.stream.writeString(c.line + "\n");
          c.line = "";
        }
      }
    }
  }
  return null;
});
