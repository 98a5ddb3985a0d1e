// listen-denied: a hostile test plugin that tries to listen where its policy
// does not allow.
//
// It listens on its --listen address (allowed), then tries four others: the
// next port on the same host, 0.0.0.0 on the same port, [::1] on the same
// port, and the same host with port 0. It logs "listen <addr> -> <result>"
// for each (every one must be `denied`, each refusal logged once by the
// host naming the plugin, the address and the rule), then logs "listening
// on <addr>" and echoes whatever its clients send: a denial does not end it.
//
// Used by test/hostile/listen-denied.test.ts.
import {
  Context, Events, Interest, IoError, Poll, SocketAddress, TcpListener, TcpStream, errorName, info, lastError, serve,
} from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 0xffff_ffff;

function tryListen(a: SocketAddress): void {
  const l = TcpListener.bind(a);
  if (l === null) {
    info("listen " + a.toString() + " -> " + errorName(lastError()));
  } else {
    info("listen " + a.toString() + " -> ok");
    l.close();
  }
}

serve((ctx: Context): string | null => {
  const home = ctx.listen[0];
  const listener = TcpListener.bind(home);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const other = SocketAddress.v4(<u8>home.groups[0], <u8>home.groups[1], <u8>home.groups[2], <u8>home.groups[3], home.port + 1);
  tryListen(other);
  tryListen(SocketAddress.v4(0, 0, 0, 0, home.port));
  tryListen(SocketAddress.parse("[::1]:" + home.port.toString())!);
  tryListen(SocketAddress.v4(<u8>home.groups[0], <u8>home.groups[1], <u8>home.groups[2], <u8>home.groups[3], 0));

  const poll = new Poll();
  poll.register(listener, LISTENER, Interest.READABLE);
  info("listening on " + home.toString());
  const events = new Events(64);
  const streams = new Map<u64, TcpStream>();
  const buf = new Uint8Array(4096);
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
        s.write(buf, 0, r); // short messages in the test: one send takes them
      }
    }
  }
  return null;
});
