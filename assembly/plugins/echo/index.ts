// echo: sends back every byte it receives, on every connection.
//
// A complete example of a wasmux plugin: one event loop, a listener per
// --listen address, edge-triggered reads drained until would-block, partial
// writes kept and finished on the next writable event, half-close honoured
// (the echo of everything received is sent before the connection closes).
import {
  Context, Events, Interest, IoError, Poll, Shutdown, TcpListener, TcpStream,
  errorName, info, lastError, serve, warn,
} from "../../sdk";
export * from "../../sdk/entry";

// Tokens at or above LISTENER_TOKEN name listeners; below, connection slots.
const LISTENER_TOKEN: u64 = 1 << 32;
const CHUNK: i32 = 64 * 1024;
// After accept failed for lack of handles or descriptors, retry this often:
// the pending connections bring no new readable edge by themselves.
const ACCEPT_RETRY_MS: i32 = 50;

class Conn {
  // Bytes received but not yet sent back (only when the peer reads slowly).
  pending: Uint8Array | null = null;
  pendingStart: i32 = 0;
  peerDone: bool = false; // the peer shut down its side (we read end of stream)

  constructor(readonly stream: TcpStream, readonly slot: u32) {}
}

const poll = new Poll();
const conns = new Array<Conn | null>();
const freeSlots = new Array<u32>();
const scratch = new Uint8Array(CHUNK);

function main(ctx: Context): string | null {
  if (ctx.listen.length == 0) return "echo needs at least one --listen address";
  const listeners = new Array<TcpListener>();
  for (let i = 0; i < ctx.listen.length; i++) {
    const l = TcpListener.bind(ctx.listen[i]);
    if (l === null) return "listen on " + ctx.listen[i].toString() + " failed: " + errorName(lastError());
    const rc = poll.register(l, LISTENER_TOKEN + <u64>i, Interest.READABLE);
    if (rc < 0) return "register failed: " + errorName(rc);
    listeners.push(l);
    const bound = l.localAddress();
    info("echo listening on " + (bound ? bound.toString() : ctx.listen[i].toString()));
  }

  const events = new Events(256);
  let acceptStalled = false;
  while (true) {
    const n = poll.poll(events, acceptStalled ? ACCEPT_RETRY_MS : -1);
    if (acceptStalled) {
      acceptStalled = false;
      for (let l = 0; l < listeners.length; l++) acceptStalled = !acceptAll(listeners[l]) || acceptStalled;
    }
    for (let i: u32 = 0; i < n; i++) {
      const token = events.token(i);
      if (token >= LISTENER_TOKEN) {
        acceptStalled = !acceptAll(listeners[<i32>(token - LISTENER_TOKEN)]) || acceptStalled;
        continue;
      }
      const conn = conns[<i32>token];
      if (conn === null) continue; // closed earlier in this batch
      if (conn.pending !== null) {
        if (!flush(conn)) continue;
      }
      if (conn.peerDone) continue;
      pump(conn);
    }
  }
  return null;
}

// Accepts until would-block. Returns false when it had to stop early (out
// of handles or descriptors): the caller retries after a short wait.
function acceptAll(listener: TcpListener): bool {
  while (true) {
    const stream = listener.accept();
    if (stream === null) {
      const err = lastError();
      if (err == IoError.WouldBlock) return true;
      if (err == IoError.Reset) continue; // the client gave up while queued
      warn("accept failed: " + errorName(err));
      return false;
    }
    const slot = freeSlots.length > 0 ? freeSlots.pop() : <u32>conns.length;
    const conn = new Conn(stream, slot);
    if (slot == <u32>conns.length) conns.push(conn);
    else conns[slot] = conn;
    const rc = poll.register(stream, <u64>slot, Interest.READABLE);
    if (rc < 0) {
      warn("register failed: " + errorName(rc));
      close(conn);
      continue;
    }
    // Data may already be waiting: drain now rather than wait for an edge.
    pump(conn);
  }
}

// Reads until would-block, echoing each chunk. Stops early (and waits for
// writable) when the peer does not take our writes.
function pump(conn: Conn): void {
  while (true) {
    const n = conn.stream.read(scratch);
    if (n == IoError.WouldBlock) return;
    if (n < 0) { close(conn); return; } // reset or another error: nothing to save
    if (n == 0) {
      conn.peerDone = true;
      finishIfDone(conn);
      return;
    }
    if (!send(conn, scratch, 0, n)) return;
  }
}

// Sends buf[start..start+len]; keeps what the peer did not take and asks for
// writable. Returns true when everything went out.
function send(conn: Conn, buf: Uint8Array, start: i32, len: i32): bool {
  let off = start;
  const end = start + len;
  while (off < end) {
    const w = conn.stream.write(buf, off, end - off);
    if (w == IoError.WouldBlock) break;
    if (w < 0) { close(conn); return false; }
    off += w;
  }
  if (off == end) return true;
  const rest = new Uint8Array(end - off);
  memory.copy(rest.dataStart, buf.dataStart + <usize>off, <usize>(end - off));
  conn.pending = rest;
  conn.pendingStart = 0;
  poll.reregister(conn.stream, <u64>conn.slot, Interest.BOTH);
  return false;
}

// Writes pending bytes; true when none are left (reading may resume).
function flush(conn: Conn): bool {
  const p = conn.pending!;
  while (conn.pendingStart < p.length) {
    const w = conn.stream.write(p, conn.pendingStart, p.length - conn.pendingStart);
    if (w == IoError.WouldBlock) return false;
    if (w < 0) { close(conn); return false; }
    conn.pendingStart += w;
  }
  conn.pending = null;
  poll.reregister(conn.stream, <u64>conn.slot, Interest.READABLE);
  finishIfDone(conn);
  return conns[conn.slot] !== null;
}

function finishIfDone(conn: Conn): void {
  if (conn.peerDone && conn.pending === null) {
    conn.stream.shutdown(Shutdown.Send);
    close(conn);
  }
}

function close(conn: Conn): void {
  conn.stream.close();
  conns[conn.slot] = null;
  freeSlots.push(conn.slot);
}

serve(main);
