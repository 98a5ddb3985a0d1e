// alloc-unbounded: a hostile test plugin that allocates without bound.
//
// It listens (logging "listening on <addr>"), and when a connection sends a
// byte it logs "allocating without bound" and allocates 256 KiB blocks
// forever, writing to every page and keeping every block reachable, so the
// garbage collector can free nothing. Its linear memory grows until the
// policy's cap (enforced in the module: memory.grow fails), where the
// allocator traps. The host must log that trap once, naming the memory, keep
// its own RSS bounded (the dead instance's memory is released with its
// thread) and restart the instance.
//
// Used by test/hostile/alloc-unbounded.test.ts.
import { Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, serve } from "../../sdk";
export * from "../../sdk/entry";

const LISTENER: u64 = 0xffff_ffff;
const BLOCK: i32 = 256 * 1024;
const hoard = new Array<Uint8Array>();

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const poll = new Poll();
  poll.register(listener, LISTENER, Interest.READABLE);
  info("listening on " + ctx.listen[0].toString());
  const events = new Events(16);
  const byte = new Uint8Array(1);
  while (true) {
    const n = poll.poll(events);
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == LISTENER) {
        while (true) {
          const s = listener.accept();
          if (s === null) break;
          poll.register(s, <u64>s.handle, Interest.READABLE);
        }
        continue;
      }
      // Any readable stream: one byte is the signal.
      tcpReadOne(<u32>token, byte);
    }
  }
  return null;
});

// Streams are registered under their handle: the token names the stream.
function tcpReadOne(handle: u32, byte: Uint8Array): void {
  const s = new TcpStream(handle);
  const r = s.read(byte);
  if (r == 0 || (r < 0 && r != IoError.WouldBlock)) s.close();
  if (r <= 0) return;
  info("allocating without bound");
  while (true) {
    const b = new Uint8Array(BLOCK);
    for (let p = 0; p < BLOCK; p += 4096) b[p] = <u8>p;
    hoard.push(b);
  }
}
