// bad-lengths: a hostile test plugin that hands the host lengths and
// pointers outside its own memory.
//
// It listens ("listening on <addr>") and, for every byte a connection sends,
// logs "case <c>" and does:
//
//   s  send(stream, ptr = 16 bytes before the end of memory, len = 4096)
//   h  send(stream, ptr = a valid buffer, len = 0xffffffff)
//   r  recv(stream, 16, retptr = 64 bytes past the end of memory)
//   x  recv(stream, 16, retptr = 0xfffffff0)
//   a  recv(stream, 16, retptr misaligned by one byte)
//   l  log(info, ptr = 8 bytes before the end of memory, len = 100)
//   w  poll.wait(1, some(0), retptr = the end of memory)
//
// Each is a canonical-ABI violation: the instance must trap with a message
// naming the access, be logged once and be restarted. Two legitimate edge
// cases answer on the connection instead and the instance keeps running:
//
//   R  recv(stream, 0xffffffff) -> "recv-huge ok <n>" (the host caps the size)
//   S  send(stream, ptr = the very end of memory, len = 0) -> "send-empty-at-end ok <n>"
//
// Used by test/hostile/bad-lengths.test.ts.
import {
  Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, serve,
} from "../../sdk";
import { log_log, poll_wait, tcp_recv, tcp_send } from "../../sdk/bindings";
import { RET, u32Result } from "../../sdk/abi";
export * from "../../sdk/entry";

const LISTENER: u64 = 0xffff_ffff;
const DATA: usize = memory.data(64, 8);

function memEnd(): usize {
  return <usize>memory.size() << 16;
}

function hostile(s: TcpStream, c: u8): void {
  info("case " + String.fromCharCode(c));
  const h = s.handle;
  if (c == 0x73) tcp_send(h, memEnd() - 16, 4096, RET); // s
  else if (c == 0x68) tcp_send(h, DATA, 0xffff_ffff, RET); // h
  else if (c == 0x72) tcp_recv(h, 16, memEnd() + 64); // r
  else if (c == 0x78) tcp_recv(h, 16, 0xffff_fff0); // x
  else if (c == 0x61) tcp_recv(h, 16, RET + 1); // a
  else if (c == 0x6c) log_log(2, memEnd() - 8, 100); // l
  else if (c == 0x77) poll_wait(1, 1, 0, memEnd()); // w
  else if (c == 0x52) { // R
    tcp_recv(h, 0xffff_ffff, RET);
    const err = load<u8>(RET) != 0;
    const n = load<u32>(RET + 8);
    if (!err && n > 0) heap.free(load<usize>(RET + 4));
    s.writeString(err ? "recv-huge " + errorName(-1 - <i32>load<u8>(RET + 4)) + "\n" : "recv-huge ok " + n.toString() + "\n");
  } else if (c == 0x53) { // S
    tcp_send(h, memEnd(), 0, RET);
    s.writeString("send-empty-at-end ok " + u32Result().toString() + "\n");
  }
}

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
      while (true) {
        const r = s.read(byte);
        if (r == IoError.WouldBlock) break;
        if (r <= 0) {
          s.close();
          streams.delete(token);
          break;
        }
        hostile(s, byte[0]);
      }
    }
  }
  return null;
});
