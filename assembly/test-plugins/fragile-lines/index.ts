// fragile-lines: a test plugin with a planted fragmentation bug.
//
// A line protocol: each line ("\n"-terminated) a client sends is answered
// with the same line in upper case. The bug: the handler treats whatever one
// recv returned as one whole line (the common mistake of assuming a message
// per read). On loopback, where a client's small writes arrive whole, it
// answers correctly; under simulation, short reads split a line and it
// answers each fragment as a line of its own ("HEL\nLO\n" for "hello\n").
//
// Used by test/sim/planted-bug.test.ts (on real loopback, under simulation,
// and through `wasmux test`).
import { Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, lastError, serve } from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 0xffff_ffff;

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const poll = new Poll();
  poll.register(listener, LISTENER, Interest.READABLE);
  const events = new Events(64);
  const conns = new Map<u64, TcpStream>();
  const buf = new Uint8Array(4096);
  while (true) {
    const n = poll.poll(events);
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == LISTENER) {
        while (true) {
          const s = listener.accept();
          if (s === null) break;
          conns.set(<u64>s.handle, s);
          poll.register(s, <u64>s.handle, Interest.READABLE);
        }
        continue;
      }
      if (!conns.has(token)) continue;
      const s = conns.get(token);
      while (true) {
        const r = s.read(buf);
        if (r == IoError.WouldBlock) break;
        if (r <= 0) {
          s.close();
          conns.delete(token);
          break;
        }
        // THE BUG: one read is taken to be one line.
        let end = r;
        if (buf[end - 1] == 10) end--;
        let line = "";
        for (let k = 0; k < end; k++) {
          const ch = buf[k];
          line += String.fromCharCode(ch >= 97 && ch <= 122 ? ch - 32 : ch);
        }
        // Short replies: one send takes them whole (on loopback; not under short writes, a second bug).
        s.writeString(line + "\n");
      }
    }
  }
  return null;
});
