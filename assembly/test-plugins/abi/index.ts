// abi: a test plugin that calls every import of the plugin world once or
// more with fixed, distinctive arguments and logs, after each call, one
// transcript line saying exactly what it decoded from the result.
//
// test/abi.test.ts runs it under stock jco glue and under the wasmux glue
// against the same scripted host and compares the transcripts: the two glues
// are independent implementations of the canonical ABI, so any layout
// disagreement (an offset, an alignment, a flattening, a sign) shows up as a
// differing line. The argument values are chosen to catch such bugs: IPv6
// groups all distinct and above 0x7fff, ports and u32s above 2^31 or at
// their maximum, u64 tokens with both halves non-zero and the top bit set,
// bytes 0x00/0x7f/0x80/0xff, non-ASCII UTF-8 text.
//
// The sequence of calls is fixed, and the scripted host answers each call
// from a list in the same order: keep the two in step (see the SCRIPT in
// test/abi.test.ts) when changing either.
import {
  Context, Events, Interest, Level, Poll, Shutdown, SocketAddress, TcpListener, TcpStream,
  acceptedPeer, errorName, lastError, log, nowNanos, serve,
} from "../../sdk";
import {
  limits_max_connections, limits_memory_limit, metrics_define, metrics_report, metrics_series, poll_deregister, tcp_connect,
  wall_now, DATETIME_SECONDS, DATETIME_NANOS, UPDATE_SERIES, UPDATE_SIZE, UPDATE_VALUE,
} from "../../sdk/bindings";
import { RET, unitResult, u32Result } from "../../sdk/abi";
import { adoptError, adoptOn, giveStream } from "../../sdk/handover";
export * from "../../sdk/entry";

// The clocks' resolution functions are part of the world's imports but the
// SDK has no use for them; declared here so that every import is exercised.
@external("wasi:clocks/monotonic-clock@0.2.0", "resolution")
declare function monotonic_resolution(): u64;

@external("wasi:clocks/wall-clock@0.2.0", "resolution")
declare function wall_resolution(retptr: usize): void;

const poll = new Poll();

function line(text: string): void {
  log(Level.Info, text);
}

function hex32(v: u32): string {
  return "0x" + v.toString(16).padStart(8, "0");
}

function hex64(v: u64): string {
  return "0x" + v.toString(16).padStart(16, "0");
}

function bytes(p: usize, n: i32): string {
  let s = "";
  for (let i = 0; i < n; i++) {
    if (i > 0) s += " ";
    s += (<u32>load<u8>(p + <usize>i)).toString(16).padStart(2, "0");
  }
  return s;
}

function readiness(r: u8): string {
  const names = ["readable", "writable", "read-closed", "hang-up", "error"];
  let s = "";
  for (let i = 0; i < 5; i++) {
    if ((r & (1 << <u8>i)) != 0) s += (s.length > 0 ? "|" : "") + names[i];
  }
  return s + " (" + r.toString() + ")";
}

function unit(what: string, rc: i32): void {
  line(what + " -> " + (rc == 0 ? "ok" : "err " + errorName(rc)));
}

function listenLine(addr: SocketAddress, backlog: u32): TcpListener | null {
  const l = TcpListener.bind(addr, backlog);
  line("listen " + addr.toString() + " backlog=" + backlog.toString() + " -> " +
    (l ? "ok " + hex32(l.handle) : "err " + errorName(lastError())));
  return l;
}

function acceptLine(l: TcpListener): TcpStream | null {
  const s = l.accept();
  line("accept " + hex32(l.handle) + " -> " +
    (s ? "ok " + hex32(s.handle) + " peer=" + acceptedPeer().toString() : "err " + errorName(lastError())));
  return s;
}

function connectLine(addr: SocketAddress): TcpStream | null {
  const s = TcpStream.connect(addr);
  line("connect " + addr.toString() + " -> " + (s ? "ok " + hex32(s.handle) : "err " + errorName(lastError())));
  return s;
}

function addressLine(what: string, h: u32, a: SocketAddress | null): void {
  line(what + " " + hex32(h) + " -> " + (a ? "ok " + a.toString() : "err " + errorName(lastError())));
}

function recvLine(s: TcpStream, max: i32): void {
  const buf = new Uint8Array(max);
  const n = s.read(buf);
  line("recv " + hex32(s.handle) + " max=" + max.toString() + " -> " +
    (n >= 0 ? "ok len=" + n.toString() + " [" + bytes(buf.dataStart, n) + "]" : "err " + errorName(n)));
}

function sendLine(s: TcpStream, data: u8[]): void {
  const buf = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) buf[i] = data[i];
  const n = s.write(buf);
  line("send " + hex32(s.handle) + " [" + bytes(buf.dataStart, buf.length) + "] -> " +
    (n >= 0 ? "ok " + n.toString() : "err " + errorName(n)));
}

function waitLine(capacity: u32, timeoutMs: i32): void {
  const events = new Events(capacity);
  const n = poll.poll(events, timeoutMs);
  let s = "wait max=" + capacity.toString() + " timeout=" + (timeoutMs < 0 ? "none" : timeoutMs.toString()) +
    " -> " + n.toString() + " events";
  for (let i: u32 = 0; i < n; i++) {
    s += "; token=" + hex64(events.token(i)) + " ready=" + readiness(events.readiness(i));
  }
  line(s);
}

function main(ctx: Context): string | null {
  // What run() received: the lowered context record.
  line("ctx.config=" + ctx.config + " (" + String.UTF8.byteLength(ctx.config).toString() + " bytes)");
  line("ctx.listen.length=" + ctx.listen.length.toString());
  for (let i = 0; i < ctx.listen.length; i++) line("ctx.listen[" + i.toString() + "]=" + ctx.listen[i].toString());
  line("ctx.instance=" + ctx.instance.toString());

  // log: every level, multi-byte UTF-8 of 2, 3 and 4 bytes per character.
  log(Level.Trace, "trace: Grüße aus Zürich");
  log(Level.Debug, "debug: 日本語のテキスト");
  log(Level.Info, "info: emoji 🦀🚀 and ∂x/∂t");
  log(Level.Warn, "warn: ½ ≠ 0.5? — “quoted”");
  log(Level.Error, "error: Ωmega ☃ 𝄞 end");

  if (ctx.listen.length < 2) return "abi needs two --listen addresses";
  const v4 = ctx.listen[0];
  const v6 = ctx.listen[1];

  // tcp.listen: flattened ip-address (both cases), u16 port, u32 backlog.
  const l4 = listenLine(v4, 0x80000001);
  const l6 = listenLine(v6, 1);
  listenLine(v4, 7);
  if (l4 === null || l6 === null) return "abi: listen failed";

  // tcp.local-address: result<socket-address, error-code> with both cases.
  addressLine("local-address", l4.handle, l4.localAddress());
  addressLine("local-address", l6.handle, l6.localAddress());

  // tcp.accept: result<tuple<handle, socket-address>, error-code>.
  const a = acceptLine(l4);
  const b = acceptLine(l4);
  acceptLine(l4);
  if (a === null || b === null) return "abi: accept failed";

  // tcp.connect, through the SDK and through the binding itself (whose
  // flat slots 4..7 are garbage for ipv4: the canonical ABI ignores them).
  const c = connectLine(SocketAddress.parse("10.20.30.40:65535")!);
  connectLine(SocketAddress.parse("[2606:4700:ab01:cd02:ef03:1204:3405:5606]:853")!);
  tcp_connect(0, 192, 168, 255, 254, 0xdead, 0xbeef, 0x1234, 0x5678, 32768, RET);
  const raw = u32Result();
  line("connect (raw) 192.168.255.254:32768 -> " + (raw >= 0 ? "ok " + hex32(<u32>raw) : "err " + errorName(raw)));
  if (c === null) return "abi: connect failed";

  // tcp.peer-address.
  addressLine("peer-address", a.handle, a.peerAddress());
  addressLine("peer-address", c.handle, c.peerAddress());

  // poll.register / reregister: u64 tokens (top bit set, both halves
  // non-zero) and both interest bits.
  unit("register " + hex32(a.handle) + " token=0xfedcba9876543210 interest=both",
    poll.register(a, 0xFEDCBA9876543210, Interest.BOTH));
  unit("register " + hex32(l4.handle) + " token=0x8000000000000001 interest=readable",
    poll.register(l4, 0x8000000000000001, Interest.READABLE));
  unit("register " + hex32(b.handle) + " token=0x0000000100000000 interest=writable",
    poll.register(b, 0x0000000100000000, Interest.WRITABLE));
  unit("reregister " + hex32(a.handle) + " token=0x0123456789abcdef interest=both",
    poll.reregister(a, 0x0123456789ABCDEF, Interest.BOTH));

  // tcp.recv: result<list<u8>, error-code>: data, would-block, end of stream, an error.
  recvLine(a, 5);
  recvLine(a, 65536);
  recvLine(b, 3);
  recvLine(c, 1);

  // tcp.send: list<u8> argument, result<u32, error-code>.
  sendLine(a, [0x01, 0x02, 0xfe, 0xff, 0x00, 0x80]);
  sendLine(c, [0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f]); // "héllo"
  sendLine(b, [0xaa]);

  // tcp.shutdown: every shutdown-how.
  unit("shutdown " + hex32(a.handle) + " receive", a.shutdown(Shutdown.Receive));
  unit("shutdown " + hex32(b.handle) + " send", b.shutdown(Shutdown.Send));
  unit("shutdown " + hex32(c.handle) + " both", c.shutdown(Shutdown.Both));

  // poll.wait: list<event> (u64 token at 0, flags at 8, 16-byte stride),
  // option<u32> timeout some and none, an empty list.
  waitLine(7, 1234);
  recvLine(a, 16);
  waitLine(1, 0);
  waitLine(3, -1);

  // poll.deregister, through the binding (Poll.deregister wants a Source).
  poll_deregister(a.handle, RET);
  unit("deregister " + hex32(a.handle), unitResult());
  unit("deregister " + hex32(l4.handle), poll.deregister(l4));

  // handover.give (list<u8> argument, result<_, error-code>) and
  // handover.adopt (result<tuple<handle, list<u8>>, error-code>): outside a
  // reload both say no (denied: not draining; would-block: nothing handed over).
  const state = new Uint8Array(3);
  state[0] = 0x01; state[1] = 0x80; state[2] = 0xff;
  unit("give " + hex32(a.handle) + " [" + bytes(state.dataStart, 3) + "]", giveStream(a, state.dataStart, 3));
  const adopted = adoptOn(l4);
  line("adopt " + hex32(l4.handle) + " -> " + (adopted !== null ? "ok " + hex32(adopted.stream.handle) : "err " + errorName(adoptError())));

  // tcp.close, then a stale handle, then a reused slot with a new generation.
  unit("close " + hex32(b.handle), b.close());
  unit("close " + hex32(b.handle) + " again", b.close());
  connectLine(SocketAddress.parse("127.0.0.1:1")!);

  // metrics.define (an enum, two strings, list<string>, list<f64>), metrics.series
  // (list<string>) and metrics.report (list<record { u32, f64 }>), through the bindings.
  defineLine(2, "histogram", "abi_latency_seconds", "Latency ☃ “help”", ["route", "code"], [0.005, 0.25, 1e300]);
  defineLine(0, "counter", "abi:requests_total", "", [], []);
  defineLine(1, "gauge", "bad name", "h", [], []);
  seriesLine(1, ["/ü", "200"]);
  seriesLine(2, []);
  seriesLine(7, []);
  const updates = new ArrayBuffer(3 * <i32>UPDATE_SIZE);
  const u = changetype<usize>(updates);
  store<u32>(u + UPDATE_SERIES, 1); store<f64>(u + UPDATE_VALUE, 0.1);
  store<u32>(u + UPDATE_SIZE + UPDATE_SERIES, 2); store<f64>(u + UPDATE_SIZE + UPDATE_VALUE, 4294967296.5);
  store<u32>(u + 2 * UPDATE_SIZE + UPDATE_SERIES, 1); store<f64>(u + 2 * UPDATE_SIZE + UPDATE_VALUE, -0.0);
  metrics_report(u, 3, RET);
  unit("metrics.report 3", unitResult());
  store<u32>(u + UPDATE_SERIES, 9);
  metrics_report(u, 1, RET);
  unit("metrics.report 1", unitResult());

  // Clocks: the values are not deterministic, so only their plausibility
  // is logged; the resolutions are fixed by both hosts.
  const t0 = nowNanos();
  const t1 = nowNanos();
  line("monotonic-clock.now -> " + (t0 > 0 && t1 >= t0 ? "positive, non-decreasing" : "IMPLAUSIBLE " + t0.toString() + " " + t1.toString()));
  line("monotonic-clock.resolution -> " + monotonic_resolution().toString());
  wall_now(RET);
  const secs = load<u64>(RET + DATETIME_SECONDS);
  const nanos = load<u32>(RET + DATETIME_NANOS);
  // After 2023-11-14 and before 2100; nanoseconds below one second.
  line("wall-clock.now -> " + (secs > 1_700_000_000 && secs < 4_102_444_800 && nanos < 1_000_000_000
    ? "plausible" : "IMPLAUSIBLE " + secs.toString() + "." + nanos.toString()));
  wall_resolution(RET);
  line("wall-clock.resolution -> " + load<u64>(RET + DATETIME_SECONDS).toString() + "s " +
    load<u32>(RET + DATETIME_NANOS).toString() + "ns");

  // The instance's limits: a u64 past 32 bits and a u32, as the host gives them.
  line("limits.memory-limit -> " + limits_memory_limit().toString());
  line("limits.max-connections -> " + limits_max_connections().toString());

  // The err case of run's result<_, string>.
  return "abi-done";
}

// list<string> as (ptr, len) pairs; the encoded strings kept alive in `keep`.
function strings(list: string[], keep: Array<ArrayBuffer>): usize {
  if (list.length == 0) return 8;
  const pairs = new ArrayBuffer(list.length * 8);
  keep.push(pairs);
  for (let i = 0; i < list.length; i++) {
    const b = String.UTF8.encode(list[i]);
    keep.push(b);
    store<u32>(changetype<usize>(pairs) + <usize>i * 8, <u32>changetype<usize>(b));
    store<u32>(changetype<usize>(pairs) + <usize>i * 8 + 4, <u32>b.byteLength);
  }
  return changetype<usize>(pairs);
}

function defineLine(kind: u32, kindName: string, name: string, help: string, labels: string[], buckets: f64[]): void {
  const keep = new Array<ArrayBuffer>();
  const n = String.UTF8.encode(name);
  const h = String.UTF8.encode(help);
  const b = new StaticArray<f64>(buckets.length);
  for (let i = 0; i < buckets.length; i++) b[i] = buckets[i];
  metrics_define(kind, changetype<usize>(n), <usize>n.byteLength, changetype<usize>(h), <usize>h.byteLength,
    strings(labels, keep), <usize>labels.length, buckets.length > 0 ? changetype<usize>(b) : 8, <usize>buckets.length, RET);
  const r = u32Result();
  line("metrics.define " + kindName + " " + name + " -> " + (r >= 0 ? "ok " + r.toString() : "err " + errorName(r)));
}

function seriesLine(m: u32, values: string[]): void {
  const keep = new Array<ArrayBuffer>();
  metrics_series(m, strings(values, keep), <usize>values.length, RET);
  const r = u32Result();
  line("metrics.series " + m.toString() + " [" + values.join(" ") + "] -> " + (r >= 0 ? "ok " + r.toString() : "err " + errorName(r)));
}

serve(main);
