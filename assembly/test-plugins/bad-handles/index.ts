// bad-handles: a hostile test plugin that calls every handle-taking import
// with handles that are not its own to use, and reports what it got.
//
// At start it listens, closes that listener and listens again, keeping the
// closed listener's (stale) handle. For each accepted connection it probes
// every function that takes a handle (register, reregister, deregister,
// accept, recv, send, shutdown, close, local-address, peer-address) with:
// 0, 0xffffffff, bit 31 set, the largest index; the stale listener handle
// and every stream handle it has closed so far; live handles with their
// generation changed; the backend's reserved slots 0-3 (its epoll and
// eventfd descriptors) and out-of-range indices under a live generation
// (the layout learnt from the two listeners' handles); 48
// pseudo-random values; and the wrong kind (recv/send/shutdown/peer-address
// on the listener, accept on a stream). Values equal to a handle that is
// live at that moment are skipped: they are not forged.
//
// Every probe must come back `bad-handle`. The plugin writes one line per
// probe that did not ("UNEXPECTED <op> 0x<value> -> <result>"), then
// "probes <n> bad-handle <m>\n", logs the same summary, and then echoes
// the connection's bytes: it keeps running normally.
//
// The host reports the plugin ready at its first listen; a client must wait
// for the plugin's "listening on <addr>" line (after the second listen), or
// it may land in the closed listener's queue and be reset.
//
// Used by test/hostile/bad-handles.test.ts.
import {
  Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, nowNanos, serve,
} from "../../sdk";
import {
  poll_register, poll_reregister, poll_deregister, tcp_accept, tcp_recv, tcp_send, tcp_shutdown, tcp_close,
  tcp_local_address, tcp_peer_address,
} from "../../sdk/bindings";
import { RET } from "../../sdk/abi";
export * from "../../sdk/entry";

const LISTENER: u64 = 0xffff_ffff;
// The handle layout, as a guest can learn it: its first two listeners share
// a slot, and their generations differ by one, so the lowest bit in which
// the two handles differ is the generation's lowest bit.
let GEN: u32 = 0;
let INDEX_MASK: u32 = 0;
const DATA: usize = memory.data(8, 8);

let rng: u32 = 0;
function next(): u32 {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

// Each call returns 0 (ok) or an IoError, from the raw result area.
function unitErr(): i32 { return load<u8>(RET) == 0 ? 0 : -1 - <i32>load<u8>(RET + 1); }
function wideErr(at: usize): i32 { return load<u8>(RET) == 0 ? 0 : -1 - <i32>load<u8>(RET + at); }

const OPS: StaticArray<string> = [
  "register", "reregister", "deregister", "accept", "recv", "send", "shutdown", "close", "local-address", "peer-address",
];

function call(op: i32, h: u32): i32 {
  switch (op) {
    case 0: poll_register(h, 7, Interest.READABLE, RET); return unitErr();
    case 1: poll_reregister(h, 7, Interest.READABLE, RET); return unitErr();
    case 2: poll_deregister(h, RET); return unitErr();
    case 3: tcp_accept(h, RET); return wideErr(4);
    case 4: tcp_recv(h, 16, RET); return wideErr(4);
    case 5: tcp_send(h, DATA, 4, RET); return wideErr(4);
    case 6: tcp_shutdown(h, 2, RET); return unitErr();
    case 7: tcp_close(h, RET); return unitErr();
    case 8: tcp_local_address(h, RET); return wideErr(2);
    default: tcp_peer_address(h, RET); return wideErr(2);
  }
}

let staleListener: u32 = 0;
const closedStreams = new Array<u32>();
const live = new Set<u32>();
let listener: TcpListener | null = null;

class Report {
  total: i32 = 0;
  bad: i32 = 0;
  text: string = "";
  probe(op: i32, h: u32): void {
    const r = call(op, h);
    this.total++;
    if (r == IoError.BadHandle) this.bad++;
    else this.text += "UNEXPECTED " + OPS[op] + " 0x" + h.toString(16) + " -> " + errorName(r) + "\n";
  }
  all(h: u32): void {
    if (live.has(h)) return; // a live handle is not a forgery
    for (let op = 0; op < OPS.length; op++) this.probe(op, h);
  }
}

function probeAll(s: TcpStream): string {
  const rep = new Report();
  const l = listener!.handle;
  const values = new Array<u32>();
  values.push(0);
  values.push(0xffff_ffff);
  values.push(0x8000_0000);
  values.push(0x7fff_ffff);
  values.push(INDEX_MASK);
  values.push(staleListener);
  for (let i = 0; i < closedStreams.length; i++) values.push(closedStreams[i]);
  const owned: StaticArray<u32> = [l, s.handle];
  for (let k = 0; k < 2; k++) {
    const h = owned[k];
    const gen = h & ~INDEX_MASK;
    values.push(h ^ GEN); // generation changed
    values.push(h + GEN);
    values.push(h - GEN);
    values.push(h | 0x8000_0000);
    for (let slot: u32 = 0; slot < 4; slot++) values.push(gen | slot); // the backend's own descriptors
    values.push(gen | (INDEX_MASK - 1));
    values.push(gen | INDEX_MASK);
  }
  for (let i = 0; i < 48; i++) values.push(next());
  for (let i = 0; i < values.length; i++) rep.all(values[i]);
  // The right handle of the wrong kind.
  rep.probe(4, l); // recv on a listener
  rep.probe(5, l); // send on a listener
  rep.probe(6, l); // shutdown on a listener
  rep.probe(9, l); // peer-address on a listener
  rep.probe(3, s.handle); // accept on a stream
  const summary = "probes " + rep.total.toString() + " bad-handle " + rep.bad.toString();
  info(summary);
  return rep.text + summary + "\n";
}

serve((ctx: Context): string | null => {
  rng = <u32>(nowNanos() | 1);
  const first = TcpListener.bind(ctx.listen[0]);
  if (first === null) return "listen failed: " + errorName(lastError());
  staleListener = first.handle;
  first.close();
  listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen again failed: " + errorName(lastError());
  live.add(listener!.handle);
  GEN = 1 << ctz(staleListener ^ listener!.handle);
  INDEX_MASK = GEN - 1;
  const poll = new Poll();
  poll.register(listener!, LISTENER, Interest.READABLE);
  info("listening on " + ctx.listen[0].toString());
  store<u32>(DATA, 0x21212121);
  const events = new Events(64);
  const streams = new Map<u64, TcpStream>();
  const buf = new Uint8Array(4096);
  while (true) {
    const n = poll.poll(events);
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == LISTENER) {
        while (true) {
          const s = listener!.accept();
          if (s === null) break;
          live.add(s.handle);
          streams.set(<u64>s.handle, s);
          poll.register(s, <u64>s.handle, Interest.READABLE);
          s.writeString(probeAll(s));
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
          live.delete(s.handle);
          if (closedStreams.length < 64) closedStreams.push(s.handle);
          break;
        }
        s.write(buf, 0, r);
      }
    }
  }
  return null;
});
