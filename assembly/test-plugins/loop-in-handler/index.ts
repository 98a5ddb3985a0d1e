// loop-in-handler: a hostile test plugin that starts well and then spins
// inside a connection handler.
//
// It listens on its --listen address (logging "listening on <addr>" once the
// listener is registered), accepts connections, and when it has read one
// byte from any of them logs "looping since <ns>" (monotonic clock, see
// loop-at-start) and spins forever without returning to poll.wait. The
// watchdog must kill it within cpuBudgetMs (plus its tick), the supervisor
// closes every descriptor the instance held and restarts it.
//
// Used by test/hostile/loop-in-handler.test.ts and test/hostile/cli-neighbour.test.ts.
import { Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, nowNanos, serve } from "../../sdk";
export * from "../../sdk/entry";

const SPIN: usize = memory.data(8, 8);
const LISTENER: u64 = 0xffff_ffff;

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const poll = new Poll();
  poll.register(listener, LISTENER, Interest.READABLE);
  info("listening on " + ctx.listen[0].toString());
  const events = new Events(64);
  const streams = new Map<u64, TcpStream>();
  const byte = new Uint8Array(1);
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
      const r = s.read(byte);
      if (r > 0) {
        info("looping since " + nowNanos().toString());
        while (true) store<u64>(SPIN, load<u64>(SPIN) + 1);
      }
      if (r != IoError.WouldBlock) {
        s.close();
        streams.delete(token);
      }
    }
  }
  return null;
});
