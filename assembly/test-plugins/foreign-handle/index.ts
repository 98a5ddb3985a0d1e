// foreign-handle: a hostile test plugin that uses handle values another
// instance of the same plugin owns.
//
// Instances share nothing, so the test carries the values across: every
// accepted connection is greeted with "hello instance=<i> listener=<hex>
// stream=<hex> index-bits=<n>" (also logged), and then takes line commands:
//
//   handles          -> "handles <hex>..." every handle live in this instance
//   probe <hex>      -> calls recv, send("FOREIGN\n"), peer-address,
//                       local-address, shutdown, register, reregister,
//                       deregister, accept and close (in that order) on the
//                       value and answers "probe <hex> <op>=<result>...";
//                       "probe <hex> own" if the value is live here
//   sweep <index> <from> <count>
//                    -> calls local-address on generations from..from+count-1
//                       of slot <index> and answers "sweep <index> ok=<hex,...>",
//                       the values that worked
//   echo <text>      -> "echo <text>"
//
// A handle of instance 0 used in instance 1 must get bad-handle from every
// call and must never reach instance 0's socket (its client never sees
// FOREIGN); a sweep finds only the instance's own live handles.
//
// The plugin learns the handle layout the way an attacker could: it listens,
// closes, and listens again; both listeners have the same slot and
// generations one apart, so the lowest bit in which their handles differ is
// where the generation starts (index-bits).
//
// Used by test/hostile/foreign-handle.test.ts.
import {
  Context, Events, Interest, IoError, Poll, TcpListener, TcpStream, errorName, info, lastError, serve,
} from "../../sdk";
import {
  poll_register, poll_reregister, poll_deregister, tcp_accept, tcp_recv, tcp_send, tcp_shutdown, tcp_close,
  tcp_local_address, tcp_peer_address,
} from "../../sdk/bindings";
import { RET } from "../../sdk/abi";
export * from "../../sdk/entry";

const LISTENER: u64 = 0xffff_ffff;

class Conn {
  line: string = "";
  constructor(readonly stream: TcpStream) {}
}

const conns = new Map<u64, Conn>();
let listener: TcpListener | null = null;
let indexBits: u32 = 0;
const FOREIGN = String.UTF8.encode("FOREIGN\n");

function unitErr(): i32 { return load<u8>(RET) == 0 ? 0 : -1 - <i32>load<u8>(RET + 1); }
function wideErr(at: usize): i32 { return load<u8>(RET) == 0 ? 0 : -1 - <i32>load<u8>(RET + at); }

function isLive(h: u32): bool {
  return h == listener!.handle || conns.has(<u64>h);
}

function hex(v: u32): string {
  return v.toString(16);
}

function parseHex(s: string): u32 {
  let v: u32 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const d: u32 = c >= 97 ? <u32>(c - 87) : c >= 65 ? <u32>(c - 55) : <u32>(c - 48);
    v = (v << 4) | (d & 15);
  }
  return v;
}

function probe(h: u32): string {
  if (isLive(h)) return "probe " + hex(h) + " own";
  let out = "probe " + hex(h);
  tcp_recv(h, 16, RET); out += " recv=" + errorName(wideErr(4));
  tcp_send(h, changetype<usize>(FOREIGN), <usize>FOREIGN.byteLength, RET); out += " send=" + errorName(wideErr(4));
  tcp_peer_address(h, RET); out += " peer-address=" + errorName(wideErr(2));
  tcp_local_address(h, RET); out += " local-address=" + errorName(wideErr(2));
  tcp_shutdown(h, 2, RET); out += " shutdown=" + errorName(unitErr());
  poll_register(h, 99, Interest.READABLE, RET); out += " register=" + errorName(unitErr());
  poll_reregister(h, 99, Interest.READABLE, RET); out += " reregister=" + errorName(unitErr());
  poll_deregister(h, RET); out += " deregister=" + errorName(unitErr());
  tcp_accept(h, RET); out += " accept=" + errorName(wideErr(4));
  tcp_close(h, RET); out += " close=" + errorName(unitErr());
  return out;
}

function sweep(args: string): string {
  const parts = args.split(" ");
  const index = <u32>I32.parseInt(parts[0]);
  const from = <u32>I32.parseInt(parts[1]);
  const count = <u32>I32.parseInt(parts[2]);
  const slot = index & ((1 << indexBits) - 1);
  let ok = "";
  for (let gen: u32 = from; gen < from + count; gen++) {
    const h = slot | (gen << indexBits);
    tcp_local_address(h, RET);
    if (load<u8>(RET) == 0) ok += (ok.length > 0 ? "," : "") + hex(h);
  }
  return "sweep " + index.toString() + " ok=" + ok;
}

function command(line: string): string {
  if (line == "handles") {
    let s = "handles " + hex(listener!.handle);
    const keys = conns.keys();
    for (let i = 0; i < keys.length; i++) s += " " + hex(<u32>keys[i]);
    return s;
  }
  if (line.startsWith("probe ")) return probe(parseHex(line.substring(6)));
  if (line.startsWith("sweep ")) return sweep(line.substring(6));
  if (line.startsWith("echo ")) return line;
  return "unknown command " + line;
}

serve((ctx: Context): string | null => {
  const first = TcpListener.bind(ctx.listen[0]);
  if (first === null) return "listen failed: " + errorName(lastError());
  const firstHandle = first.handle;
  first.close();
  listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen again failed: " + errorName(lastError());
  indexBits = ctz(firstHandle ^ listener!.handle);
  const poll = new Poll();
  poll.register(listener!, LISTENER, Interest.READABLE);
  info("listening on " + ctx.listen[0].toString());
  const events = new Events(64);
  const buf = new Uint8Array(4096);
  while (true) {
    const n = poll.poll(events);
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token == LISTENER) {
        while (true) {
          const s = listener!.accept();
          if (s === null) break;
          conns.set(<u64>s.handle, new Conn(s));
          poll.register(s, <u64>s.handle, Interest.READABLE);
          const hello = "hello instance=" + ctx.instance.toString() + " listener=" + hex(listener!.handle) + " stream=" + hex(s.handle) +
            " index-bits=" + indexBits.toString();
          info(hello);
          s.writeString(hello + "\n");
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
          if (buf[k] != 10) {
            c.line += String.fromCharCode(buf[k]);
            continue;
          }
          const reply = command(c.line);
          c.line = "";
          c.stream.writeString(reply + "\n");
        }
      }
    }
  }
  return null;
});
