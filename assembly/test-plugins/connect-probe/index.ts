// connect-probe: a test plugin that makes outbound connections, to check
// that the policy's connect rules are enforced both ways.
//
// --config is a comma-separated list of addresses ("127.0.0.1:9000,[::1]:9000").
// At start it listens on its --listen address and calls tcp.connect on each
// target in order. A refused call logs "connect <addr> -> <error>" (for a
// target no rule allows: `denied`, which the host also logs once, naming
// the plugin, the address and the rule). A connection that starts sends
// "ping from plugin\n" once writable and logs the first reply it reads as
// "connect <addr> -> reply <text>" (or "-> <error>"/"-> closed"), then
// closes. Then it logs "probes done" and keeps serving: it echoes what its
// own clients send.
//
// Used by test/hostile/connect-denied.test.ts and connect-allowed.test.ts.
import {
  Context, Events, Interest, IoError, Poll, SocketAddress, TcpListener, TcpStream, errorName, info, lastError, serve,
} from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 0xffff_ffff;
const OUTBOUND: u64 = 1 << 40; // tokens OUTBOUND + i: outbound connection i

class Outbound {
  sent: bool = false;
  done: bool = false;
  constructor(readonly stream: TcpStream, readonly target: string) {}
}

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const poll = new Poll();
  poll.register(listener, LISTENER, Interest.READABLE);
  info("listening on " + ctx.listen[0].toString());

  const outs = new Array<Outbound>();
  let pending = 0;
  const targets = ctx.config.length > 0 ? ctx.config.split(",") : new Array<string>();
  for (let i = 0; i < targets.length; i++) {
    const a = SocketAddress.parse(targets[i]);
    if (a === null) {
      info("connect " + targets[i] + " -> not an address");
      continue;
    }
    const s = TcpStream.connect(a);
    if (s === null) {
      info("connect " + a.toString() + " -> " + errorName(lastError()));
      continue;
    }
    poll.register(s, OUTBOUND + <u64>outs.length, Interest.BOTH);
    outs.push(new Outbound(s, a.toString()));
    pending++;
  }
  if (pending == 0) info("probes done");

  const events = new Events(64);
  const streams = new Map<u64, TcpStream>();
  const buf = new Uint8Array(4096);
  const ping = String.UTF8.encode("ping from plugin\n");
  while (true) {
    const n = poll.poll(events);
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == LISTENER) {
        while (true) {
          const s = listener.accept();
          if (s === null) break;
          streams.set(<u64>s.handle, s);
          poll.register(s, <u64>s.handle, Interest.READABLE);
        }
        continue;
      }
      if (token >= OUTBOUND) {
        const o = outs[<i32>(token - OUTBOUND)];
        if (o.done) continue;
        let result: string | null = null;
        if (!o.sent && events.isWritable(i) && !events.isError(i) && !events.isHangUp(i)) {
          const w = o.stream.writeRaw(changetype<usize>(ping), <u32>ping.byteLength);
          if (w >= 0) o.sent = true;
          else if (w != IoError.WouldBlock) result = errorName(w);
        }
        if (result === null && (events.isReadable(i) || events.isError(i) || events.isHangUp(i))) {
          const r = o.stream.read(buf);
          if (r > 0) result = "reply " + String.UTF8.decodeUnsafe(buf.dataStart, <usize>r).trimEnd();
          else if (r == 0) result = "closed";
          else if (r != IoError.WouldBlock) result = errorName(r);
        }
        if (result !== null) {
          info("connect " + o.target + " -> " + result);
          o.stream.close();
          o.done = true;
          if (--pending == 0) info("probes done");
        }
        continue;
      }
      if (!streams.has(token)) continue;
      const s = streams.get(token);
      while (true) {
        const r = s.read(buf);
        if (r == IoError.WouldBlock) break;
        if (r <= 0) {
          s.close();
          streams.delete(token);
          break;
        }
        s.write(buf, 0, r);
      }
    }
  }
  return null;
});
