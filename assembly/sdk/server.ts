// A connection server on top of Poll: the loop every protocol plugin would
// otherwise write again. It accepts, reads, calls the handler, sends the
// output with backpressure (reading pauses while too much output waits for
// a slow peer), runs per-connection timers, closes cleanly, and refuses
// work instead of trapping when memory runs short.
//
// A plugin extends Connection with its per-connection state and Handler
// with its protocol:
//
//   class Conn extends Connection { requests: i32 = 0; }
//   class Proto extends Handler<Conn> {
//     create(key: i32, stream: TcpStream): Conn { return new Conn(key, stream); }
//     onData(c: Conn, s: Server<Conn>): void { ...parse c.input, write c.output... }
//   }
//   const server = new Server<Conn>(new Proto());
//   server.listen(ctx.listen[0]); return server.run();
//
// Memory follows readiness, not connections: an idle connection holds its
// record and nothing else. Every read lands in one buffer of the instance;
// onData handles the bytes there, and only what it leaves unconsumed (an
// incomplete message) moves into a buffer of the connection's own, which is
// given back once the message completes. An output buffer exists while
// output waits to be sent. Both come from a small pool, so a busy
// connection allocates nothing per message.
//
// Memory pressure: when the instance's memory has grown near its cap
// (wasmux:plugin/limits) and what the allocator has free falls below the
// headroom, the server refuses new connections with the handler's refusal
// (an HTTP 503, a RESP error) and sheds the connections holding the largest
// incomplete messages (the handler's onShed writes its "too large"), until
// the headroom is back. Connections already open keep being served. Each
// episode is logged once, when it starts and when it ends.
//
// Draining: when the host drains the instance (a reload replaced it, or the
// host is stopping), a listener's registration reports hang-up (and accept
// on it says would-block for good). The server then enters draining mode: it
// accepts nothing more, tells the handler (onDrain: the HTTP server answers
// every next request with `Connection: close`), and closes the connections
// that stay idle (no input, nothing to send, no incomplete message) for
// DRAIN_IDLE_MS, so that the instance ends as soon as its clients are
// served instead of at the host's drain timeout. The grace is there
// because a client may be sending its next request on an idle keep-alive
// connection right now: closed at once, that request would be lost.
//
// Live handover (wit/handover.wit, README "Reload and handover"): a Handler
// whose adopts() is true takes the connections the old version gives on a
// reload (the Server calls handover.adopt on each listener as it listens,
// which opts the instance in). When draining begins, the old version's
// Server asks onHandover(c) of every connection that is not closing: the
// state it returns travels with the socket, together with the connection's
// unconsumed input and its unsent output (so no byte is lost and none is
// sent twice), within the host's handover-state-bytes. The new version's
// Server rebuilds the connection (input and output restored), calls
// onAdopt(c, state) and reads on. A connection the host refuses to move
// for its size is closed alone; if the new version takes none (`denied`),
// the Server drains as before. Every connection handed over in one loop
// turn reaches the new version together, and is adopted before any of
// them is read from there.

import { ByteBuffer, bufferGrowth } from "./buffer";
import { IoError, errorName } from "./error";
import { Events } from "./events";
import { Interest } from "./interest";
import { info, warn } from "./log";
import { canAllocate, memoryAvailable, memoryGrown, memoryLimit } from "./memory";
import { SocketAddress } from "./net";
import { Poll } from "./poll";
import { EMPTY_BUFFER, giveBuffer, takeBuffer } from "./pool";
import { Slab } from "./slab";
import { adoptOn, giveStream } from "./handover";
import { TcpListener, TcpStream, Shutdown, lastError } from "./tcp";
import { nowMillis } from "./time";
import { Timer, TimerWheel } from "./timers";

// Listener tokens sit above every connection key.
const LISTENER_TOKEN: u64 = 1 << 32;
// One read's most bytes. The instance's read buffer also has room in front
// for a small incomplete message, so that it and the bytes completing it
// are contiguous without copying the new bytes.
const READ_SIZE: i32 = 64 * 1024;
const SMALL_LEFTOVER: i32 = READ_SIZE / 2;
const ACCEPT_RETRY_MS: i32 = 50;
// Near the cap, what the allocator has free is read again at least this
// often, and whenever buffers have grown by a quarter of the headroom.
const MEMORY_CHECK_MS: u64 = 100;
// Draining: a connection with no traffic for about this long (between one and two of these) is closed.
const DRAIN_IDLE_MS: u64 = 1000;
// An episode of memory pressure ends once nothing had to be shed for this
// long and a headroom's worth can be allocated again in one piece.
const PRESSURE_CALM_MS: u64 = 1000;

// The input of a connection without an incomplete message.
const NO_INPUT = EMPTY_BUFFER;

/**
 * One connection: its stream, its timer (the connection is its own timer
 * node), and buffers only while it needs them. Extend it with protocol state.
 */
export class Connection extends Timer {
  /**
   * The bytes received and not yet consumed. In onData: what arrived, after
   * what an earlier call left (consume what you handle, leave an incomplete
   * message). Between calls: that incomplete message, or nothing.
   */
  input: ByteBuffer = NO_INPUT;
  /** Output waiting to be sent (internal: use `output`). */
  outBuf: ByteBuffer | null = null;
  /** Close once the output is sent (set by close()). */
  closing: bool = false;
  /** The peer has shut down its sending side. */
  peerDone: bool = false;
  closed: bool = false;
  watchingWrite: bool = false;
  /** Bytes arrived since the draining server last looked (its idle check). */
  touched: bool = false;
  /** Handed over to the new version (onClose is called with this set: the socket lives on there). */
  handedOver: bool = false;

  constructor(key: i32, readonly stream: TcpStream) {
    super(key);
  }

  /** The connection's timer (set and cleared through the Server). */
  get timer(): Timer { return this; }

  /** The output buffer: what is written here is sent when the handler returns. */
  get output(): ByteBuffer {
    let out = this.outBuf;
    if (out === null) {
      out = takeBuffer();
      this.outBuf = out;
    }
    return out;
  }

  /** Appends text to the output (sent when the handler returns). */
  write(s: string): void { this.output.writeString(s); }

  /** Sends what is queued, then closes. */
  close(): void { this.closing = true; }

  /** Output bytes not yet taken by the peer. */
  get pending(): i32 {
    const out = this.outBuf;
    return out === null ? 0 : out.length;
  }
}

export class ServerOptions {
  /** Events per poll.wait. */
  events: u32 = 256;
  /** Stop reading from a connection while more than this much output waits. */
  outputHighWater: i32 = 1 << 20;
  /** Timer resolution. */
  tickMs: u64 = 10;
  /**
   * Memory kept free: below it the server refuses and sheds. 0: an eighth
   * of the instance's memory cap, at least 1 MiB.
   */
  memoryHeadroom: i64 = 0;
}

/** The protocol: what to do with a connection's bytes and events. */
export abstract class Handler<C extends Connection> {
  /** Makes the state object of a new connection. */
  abstract create(key: i32, stream: TcpStream): C;
  /** New bytes are in c.input: consume what you handled, write replies to c.output. */
  abstract onData(c: C, server: Server<C>): void;
  /** A connection was accepted. */
  onOpen(c: C, server: Server<C>): void {}
  /** The peer shut down its sending side. Default: close once replies are sent. */
  onEnd(c: C, server: Server<C>): void { c.close(); }
  /** c.timer fired. */
  onTimer(c: C, server: Server<C>): void {}
  /** The output of c has been sent completely (after having had to wait). */
  onDrained(c: C, server: Server<C>): void {}
  /** The connection is gone (closed by either side or an error). */
  onClose(c: C, server: Server<C>): void {}
  /** Once per loop turn, after events and timers (housekeeping). */
  onTick(nowMs: u64, server: Server<C>): void {}
  /**
   * The host drains this instance (server.draining is now true): no new
   * connections will come. Finish what is under way; idle connections are
   * closed by the server. Default: nothing.
   */
  onDrain(server: Server<C>): void {}
  /**
   * What a connection refused for lack of memory is told before it is
   * closed (the protocol's "busy": an HTTP 503, a RESP error), or null to
   * close it without a word. Built once; it is sent as is.
   */
  refusal(): ArrayBuffer | null { return null; }
  /** Bytes of incomplete messages c holds: its unconsumed input and whatever the protocol buffers itself. */
  incomplete(c: C): i64 { return <i64>c.input.length; }
  /**
   * c is shed for lack of memory (it held the largest incomplete message;
   * the server has dropped its input already): give back what the protocol
   * holds for it, write the protocol's "too large" answer to c.output and
   * end the connection. Default: close it once its output is sent.
   */
  onShed(c: C, server: Server<C>): void { c.close(); }
  /**
   * Live handover, new side: whether this version takes the connections of
   * the version it replaces on a reload. Default: false (they drain there).
   */
  adopts(): bool { return false; }
  /**
   * Live handover, old side (draining): the protocol state with which c
   * moves to the new version, or null to keep c here and let it drain.
   * Asked once when draining begins and again after each of c's events
   * while it stays. c's unconsumed input and unsent output travel anyway.
   */
  onHandover(c: C, server: Server<C>): ArrayBuffer | null { return null; }
  /**
   * Live handover, new side: c was handed over with `state` (what
   * onHandover returned in the old version); c.input and c.output hold
   * what the old one had not consumed and not sent. Not registered with a
   * timer. Return false to close it.
   */
  onAdopt(c: C, state: ArrayBuffer, server: Server<C>): bool { return true; }
}

export class Server<C extends Connection> {
  readonly poll: Poll = new Poll();
  readonly connections: Slab<C> = new Slab<C>();
  readonly wheel: TimerWheel;
  /** Connections refused for lack of memory, and shed, since start. */
  refused: u64 = 0;
  shed: u64 = 0;
  /** The host drains the instance: its listeners hung up (see Draining above). */
  draining: bool = false;
  private drainCheckAt: u64 = 0;
  /** Connections handed over to the new version, adopted from the old one, and closed because a handover failed. */
  handedOver: u64 = 0;
  adopted: u64 = 0;
  handoverFailed: u64 = 0;
  /** The new version takes no connections (give said denied): drain as usual. */
  private handoverOff: bool = false;
  private listeners: TcpListener[] = [];
  private readonly readBuf: ByteBuffer = new ByteBuffer(READ_SIZE + SMALL_LEFTOVER);
  private readonly due: Timer[] = [];
  private readonly refusalBytes: ArrayBuffer | null;

  // Memory pressure.
  private readonly limit: i64;
  private readonly headroom: i64;
  private pressure: bool = false;
  private shedding: bool = false;
  private checkedAt: u64 = 0;
  private growthAtCheck: u64 = 0;
  private episodeStart: u64 = 0;
  private lastShedAt: u64 = 0;
  private episodeRefused: u64 = 0;
  private episodeShed: u64 = 0;

  constructor(readonly handler: Handler<C>, readonly options: ServerOptions = new ServerOptions()) {
    this.wheel = new TimerWheel(options.tickMs, nowMillis());
    this.refusalBytes = handler.refusal();
    this.limit = <i64>memoryLimit();
    const headroom = options.memoryHeadroom > 0 ? options.memoryHeadroom : max(this.limit / 8, <i64>(1 << 20));
    this.headroom = headroom;
  }

  /** Listens on `address`. Returns null or an error message. */
  listen(address: SocketAddress, backlog: u32 = 1024): string | null {
    const l = TcpListener.bind(address, backlog);
    if (l === null) return "listen on " + address.toString() + " failed: " + errorName(lastError());
    const rc = this.poll.register(l, LISTENER_TOKEN + <u64>this.listeners.length, Interest.READABLE);
    if (rc < 0) return "register failed: " + errorName(rc);
    this.listeners.push(l);
    // The first adopt opts this instance in (wit/handover.wit).
    if (this.handler.adopts()) this.adoptAll(l);
    return null;
  }

  /** Arms c's timer to fire `ms` from now. */
  setTimer(c: C, ms: u64): void { this.wheel.schedule(c, nowMillis() + ms); }

  clearTimer(c: C): void { this.wheel.cancel(c); }

  /** Whether the server is refusing and shedding for lack of memory now. */
  get underPressure(): bool { return this.pressure; }

  /** Runs the loop; returns only if every listener failed (an error message). */
  run(): string | null {
    const events = new Events(this.options.events);
    let acceptStalled = false;
    while (true) {
      let timeout = this.wheel.timeoutMs(nowMillis());
      if (acceptStalled && (timeout < 0 || timeout > ACCEPT_RETRY_MS)) timeout = ACCEPT_RETRY_MS;
      if (this.pressure && (timeout < 0 || timeout > <i32>MEMORY_CHECK_MS)) timeout = <i32>MEMORY_CHECK_MS;
      if (this.draining && (timeout < 0 || timeout > <i32>DRAIN_IDLE_MS)) timeout = <i32>DRAIN_IDLE_MS;
      const n = this.poll.poll(events, timeout);
      if (acceptStalled) {
        acceptStalled = false;
        for (let l = 0; l < this.listeners.length; l++) acceptStalled = !this.acceptAll(this.listeners[l]) || acceptStalled;
      }
      for (let i: u32 = 0; i < n; i++) {
        const token = events.token(i);
        if (token >= LISTENER_TOKEN) {
          if (events.isHangUp(i)) {
            // The host drains this instance: this listener takes no more connections.
            this.beginDrain();
            continue;
          }
          const l = this.listeners[<i32>(token - LISTENER_TOKEN)];
          acceptStalled = !this.acceptAll(l) || acceptStalled;
          if (this.handler.adopts()) this.adoptAll(l);
          continue;
        }
        const c = this.connections.get(<i32>token);
        if (c === null) continue;
        if (events.isWritable(i) || events.isError(i) || events.isHangUp(i)) this.flush(c);
        if (!c.closed) this.pump(c);
        if (this.draining && !c.closed) this.tryGive(c);
      }
      const now = nowMillis();
      const due = this.due;
      this.wheel.advance(now, due);
      for (let i = 0; i < due.length; i++) {
        const c = this.connections.get(due[i].key);
        if (c === null) continue;
        this.handler.onTimer(c, this);
        this.settle(c);
      }
      due.length = 0;
      this.handler.onTick(now, this);
      this.checkMemory(now, false);
      if (this.draining && now >= this.drainCheckAt) this.closeIdle(now);
    }
    return null;
  }

  /**
   * Sends as much of c's output as the peer takes; call it after a handler
   * wrote to c outside onData or consumed its input there (the buffers it
   * emptied go back).
   */
  flush(c: C): void {
    this.tidyInput(c);
    const out = c.outBuf;
    if (out !== null) {
      // onDrained may queue more (a handler streaming a large reply): send it now too.
      for (;;) {
        while (out.length > 0) {
          const w = c.stream.writeRaw(out.ptr, <u32>out.length);
          if (w == IoError.WouldBlock) break;
          if (w < 0) { this.drop(c); return; }
          out.consume(w);
        }
        const waiting = out.length > 0;
        if (waiting == c.watchingWrite) break;
        c.watchingWrite = waiting;
        this.poll.reregister(c.stream, <u64>c.key, waiting ? Interest.BOTH : Interest.READABLE);
        if (waiting) break;
        this.handler.onDrained(c, this);
        if (c.closed || out.length == 0) break;
      }
      if (c.closed) return;
      if (out.length == 0 && c.outBuf === out) {
        c.outBuf = null;
        giveBuffer(out);
      }
    }
    if (c.closing && c.outBuf === null) this.drop(c);
  }

  /** Closes c now, whatever is queued. */
  drop(c: C): void {
    this.forget(c, true);
  }

  // c leaves this server: its stream closed, or (handed over) not.
  private forget(c: C, closeStream: bool): void {
    if (c.closed) return;
    c.closed = true;
    this.wheel.cancel(c);
    if (closeStream) c.stream.close();
    this.connections.remove(c.key);
    this.handler.onClose(c, this);
    // Buffers go back now: the connection object may live on (a handler's reference).
    this.releaseInput(c);
    const out = c.outBuf;
    if (out !== null) {
      c.outBuf = null;
      giveBuffer(out);
    }
  }

  // An incomplete message's buffer that a handler has emptied goes back.
  private tidyInput(c: C): void {
    const input = c.input;
    if (input !== NO_INPUT && input !== this.readBuf && input.length == 0) {
      c.input = NO_INPUT;
      giveBuffer(input);
    }
  }

  private releaseInput(c: C): void {
    const input = c.input;
    c.input = NO_INPUT;
    if (input === this.readBuf) input.clear();
    else if (input !== NO_INPUT) giveBuffer(input);
  }

  // Draining begins: the handler hears of it; idle connections are looked at from DRAIN_IDLE_MS on.
  private beginDrain(): void {
    if (this.draining) return;
    this.draining = true;
    const conns = this.connections;
    for (let k = 0; k < conns.capacity; k++) {
      const c = conns.get(k);
      if (c !== null) c.touched = false;
    }
    this.drainCheckAt = nowMillis() + DRAIN_IDLE_MS;
    this.handler.onDrain(this);
    // Live handover: every connection that can move goes now, in this turn.
    for (let k = 0; k < conns.capacity && !this.handoverOff; k++) {
      const c = conns.get(k);
      if (c !== null) this.tryGive(c);
    }
  }

  // Draining: moves c to the new version if its handler gives a state.
  // True when c is gone from here (moved, or closed because it could not move).
  private tryGive(c: C): bool {
    if (c.closed || c.closing || this.handoverOff) return false;
    const st = this.handler.onHandover(c, this);
    if (st === null) return false;
    this.tidyInput(c);
    const input = c.input;
    const inLen = input.length;
    const outLen = c.pending;
    const total = 8 + inLen + outLen + st.byteLength;
    const blob = heap.alloc(<usize>total);
    store<u32>(blob, <u32>inLen);
    if (inLen > 0) memory.copy(blob + 4, input.ptr, <usize>inLen);
    store<u32>(blob + 4 + <usize>inLen, <u32>outLen);
    if (outLen > 0) memory.copy(blob + 8 + <usize>inLen, c.outBuf!.ptr, <usize>outLen);
    memory.copy(blob + 8 + <usize>(inLen + outLen), changetype<usize>(st), <usize>st.byteLength);
    const rc = giveStream(c.stream, blob, total);
    heap.free(blob);
    if (rc == 0) {
      this.handedOver++;
      c.handedOver = true;
      this.forget(c, false);
      return true;
    }
    if (rc == IoError.Denied) {
      this.handoverOff = true; // the new version takes none: drain as usual
      return false;
    }
    // Too large to move (Limit), or refused otherwise: this one connection is closed.
    this.handoverFailed++;
    warn("handover: a connection could not move (" + errorName(rc) + ", " + total.toString() + " bytes of state); closed");
    this.drop(c);
    return true;
  }

  // Live handover, new side: takes every connection waiting on `l`, then
  // reads from them (all adopted before any is read: a broadcast among them
  // reaches every one).
  private adoptAll(l: TcpListener): void {
    const fresh: C[] = [];
    for (let n = 0; n < 65536; n++) {
      const a = adoptOn(l);
      if (a === null) break;
      const key = this.connections.nextKey();
      const c = this.handler.create(key, a.stream);
      this.connections.insert(c);
      const p = changetype<usize>(a.state);
      const size = a.state.byteLength;
      const inLen = size >= 4 ? <i32>load<u32>(p) : -1;
      const outLen = inLen >= 0 && size >= 8 + inLen ? <i32>load<u32>(p + 4 + <usize>inLen) : -1;
      if (outLen < 0 || size < 8 + inLen + outLen) {
        warn("handover: an adopted connection's state is malformed (" + size.toString() + " bytes); closed");
        this.handoverFailed++;
        this.drop(c);
        continue;
      }
      if (inLen > 0) {
        const own = takeBuffer();
        own.writeBytes(p + 4, inLen);
        c.input = own;
      }
      if (outLen > 0) c.output.writeBytes(p + 8 + <usize>inLen, outLen);
      const rc = this.poll.register(a.stream, <u64>key, Interest.READABLE);
      if (rc < 0) {
        warn("register failed: " + errorName(rc));
        this.drop(c);
        continue;
      }
      const rest = 8 + inLen + outLen;
      if (!this.handler.onAdopt(c, a.state.slice(rest), this)) {
        this.drop(c);
        continue;
      }
      this.adopted++;
      fresh.push(c);
    }
    for (let i = 0; i < fresh.length; i++) {
      const c = fresh[i];
      if (c.closed) continue;
      this.settle(c);
      if (!c.closed) this.pump(c);
    }
  }

  // Draining: closes every connection without traffic since the last look
  // and with nothing under way (no input, no output, nothing incomplete).
  private closeIdle(now: u64): void {
    this.drainCheckAt = now + DRAIN_IDLE_MS;
    const conns = this.connections;
    for (let k = 0; k < conns.capacity; k++) {
      const c = conns.get(k);
      if (c === null || c.closed) continue;
      if (this.tryGive(c)) continue;
      if (c.touched || c.pending > 0 || this.handler.incomplete(c) > 0) {
        c.touched = false;
        continue;
      }
      c.close();
      this.flush(c);
    }
  }

  private acceptAll(listener: TcpListener): bool {
    while (true) {
      const stream = listener.accept();
      if (stream === null) {
        const err = lastError();
        if (err == IoError.WouldBlock) return true;
        if (err == IoError.Reset) continue; // the client gave up while queued
        warn("accept failed: " + errorName(err));
        return false; // out of handles or descriptors: retry shortly
      }
      if (this.admitting()) this.open(stream);
      else this.refuse(stream);
    }
    return true;
  }

  private open(stream: TcpStream): void {
    const key = this.connections.nextKey();
    const c = this.handler.create(key, stream);
    this.connections.insert(c);
    const rc = this.poll.register(stream, <u64>key, Interest.READABLE);
    if (rc < 0) {
      warn("register failed: " + errorName(rc));
      this.drop(c);
      return;
    }
    this.handler.onOpen(c, this);
    this.settle(c);
    if (!c.closed) this.pump(c);
  }

  // Tells the client it is refused, in its protocol, without ever making a
  // connection of it: what it sent is read and dropped first, so that the
  // close does not reset the answer away.
  private refuse(stream: TcpStream): void {
    this.refused++;
    this.episodeRefused++;
    const answer = this.refusalBytes;
    if (answer !== null) {
      stream.writeRaw(changetype<usize>(answer), <u32>answer.byteLength);
      stream.shutdown(Shutdown.Send);
      const rb = this.readBuf;
      rb.clear();
      for (let i = 0; i < 4 && stream.readRaw(rb.reserve(READ_SIZE), <u32>READ_SIZE) > 0; i++) rb.clear();
      rb.clear();
    }
    stream.close();
  }

  // Reads until would-block (or until too much output waits), handing each
  // batch to the handler.
  private pump(c: C): void {
    if (c.closing) {
      this.discardInput(c);
      return;
    }
    const rb = this.readBuf;
    while (!c.closed && !c.peerDone && c.pending <= this.options.outputHighWater) {
      this.tidyInput(c);
      const left = c.input; // an incomplete message from before, or NO_INPUT
      const leftLen = left.length;
      let n: i32;
      if (leftLen > SMALL_LEFTOVER) {
        // A large message under way: read onto its end, in its own buffer,
        // which may have to grow first: not past what memory can give.
        const grow = left.growthFor(READ_SIZE);
        if (grow > 0 && !this.mayGrow(c, grow)) return;
        n = c.stream.readRaw(left.reserve(READ_SIZE), <u32>READ_SIZE);
        if (n > 0) left.commit(n);
      } else {
        // Into the instance's buffer, after room for the small leftover.
        rb.clear();
        const at = rb.reserve(leftLen + READ_SIZE) + <usize>leftLen;
        n = c.stream.readRaw(at, <u32>READ_SIZE);
        if (n > 0) {
          if (leftLen > 0) {
            memory.copy(rb.ptr, left.ptr, <usize>leftLen);
            giveBuffer(left);
          }
          rb.commit(leftLen + n);
          c.input = rb;
        }
      }
      if (n == IoError.WouldBlock) return;
      if (n < 0) { this.drop(c); return; }
      if (n == 0) {
        c.peerDone = true;
        this.handler.onEnd(c, this);
        this.settle(c);
        return;
      }
      c.touched = true;
      this.handler.onData(c, this);
      this.settle(c);
      if (c.closing) {
        this.discardInput(c);
        return;
      }
    }
  }

  // A connection closing (close() was called) hears nothing more: what
  // arrives is read and thrown away, so that its handler never sees input
  // after it said close, and the socket is not closed over unread data
  // (which would reset the connection and could lose the replies still on
  // their way to the peer).
  private discardInput(c: C): void {
    const left = c.input;
    if (left !== NO_INPUT && left !== this.readBuf) giveBuffer(left);
    c.input = NO_INPUT;
    const rb = this.readBuf;
    while (!c.closed && !c.peerDone) {
      rb.clear();
      const n = c.stream.readRaw(rb.reserve(READ_SIZE), <u32>READ_SIZE);
      if (n == IoError.WouldBlock) return;
      if (n < 0) { this.drop(c); return; }
      if (n == 0) { c.peerDone = true; return; }
    }
  }

  // After a handler ran: keep what it left unconsumed in a buffer of the
  // connection's own (or give that back once empty), send what it wrote,
  // close if it asked to.
  private settle(c: C): void {
    if (c.closed) {
      this.readBuf.clear();
      return;
    }
    const input = c.input;
    if (input === this.readBuf) {
      const n = input.length;
      if (n > 0) {
        const own = takeBuffer();
        own.writeBytes(input.ptr, n);
        c.input = own;
      } else {
        c.input = NO_INPUT;
      }
      input.clear();
    } else {
      this.tidyInput(c);
    }
    if (c.pending > 0 || c.closing) this.flush(c);
    else if (c.outBuf !== null) {
      // Written to, then consumed (or nothing written): the buffer goes back.
      giveBuffer(c.outBuf!);
      c.outBuf = null;
    }
    // Buffers may have grown by a read's worth: between two loop turns a
    // burst of reads must not take the headroom unnoticed.
    this.checkMemory(nowMillis(), false);
  }

  // --- memory pressure ------------------------------------------------------

  // Before c's incomplete message grows by a block of `bytes`: when memory
  // could not give it and still keep half the headroom, the largest
  // incomplete messages are shed (c's maybe); if c is still there and
  // memory still could not, c is shed itself. True when c may grow.
  private mayGrow(c: C, bytes: i32): bool {
    if (canAllocate(<i64>bytes, this.headroom >> 1)) return true;
    this.checkMemory(nowMillis(), true);
    if (c.closed || c.closing || c.input.length == 0) return false;
    if (canAllocate(<i64>bytes, this.headroom >> 1)) return true;
    if (!this.pressure) this.beginEpisode(nowMillis(), memoryAvailable());
    this.shedOne(c, <i64>c.input.length);
    return false;
  }

  // Whether a new connection may be opened now.
  private admitting(): bool {
    if (this.pressure) this.checkMemory(nowMillis(), false);
    else if (memoryGrown() + <u64>this.headroom > <u64>this.limit) this.checkMemory(nowMillis(), false);
    return !this.pressure;
  }

  // Far from the cap nothing can run short and nothing is read. Near it,
  // what the allocator has free decides, read at most every
  // MEMORY_CHECK_MS unless buffers grew by a quarter of the headroom since.
  private checkMemory(now: u64, force: bool): void {
    if (this.shedding) return; // shedding settles connections, which come back here
    if (!this.pressure && memoryGrown() + <u64>this.headroom <= <u64>this.limit) return;
    const grew = bufferGrowth - this.growthAtCheck;
    if (!force && now - this.checkedAt < MEMORY_CHECK_MS && grew < <u64>(this.headroom >> 2)) return;
    this.checkedAt = now;
    this.growthAtCheck = bufferGrowth;
    let available = memoryAvailable();
    if (available < this.headroom) {
      // Garbage first: what the collector frees is not anyone's to shed.
      __collect();
      available = memoryAvailable();
    }
    if (available < this.headroom) {
      if (!this.pressure) this.beginEpisode(now, available);
      available = this.shedUntil(available);
    } else if (this.pressure && now - this.lastShedAt >= PRESSURE_CALM_MS && canAllocate(this.headroom, this.headroom)) {
      this.endEpisode(now);
    }
  }

  // Sheds the connections with the largest incomplete messages until the
  // headroom is back (by what they held) or none is left to shed.
  private shedUntil(available: i64): i64 {
    this.shedding = true;
    while (available < this.headroom) {
      let worst: C | null = null;
      let most: i64 = 0;
      const items = this.connections;
      for (let k = 0; k < items.capacity; k++) {
        const c = items.get(k);
        if (c === null || c.closed) continue;
        const held = this.handler.incomplete(c);
        if (held > most) {
          most = held;
          worst = c;
        }
      }
      if (worst === null) break;
      this.shedOne(<C>worst, most);
      available += most;
    }
    this.shedding = false;
    return available;
  }

  private shedOne(c: C, held: i64): void {
    const wasShedding = this.shedding;
    this.shedding = true;
    this.shed++;
    this.episodeShed++;
    this.lastShedAt = nowMillis();
    this.releaseInput(c);
    this.handler.onShed(c, this);
    this.settle(c);
    this.shedding = wasShedding;
  }

  private beginEpisode(now: u64, available: i64): void {
    this.pressure = true;
    this.episodeStart = now;
    this.lastShedAt = now;
    this.episodeRefused = 0;
    this.episodeShed = 0;
    warn("memory pressure: " + mib(available) + " MiB free of a " + mib(this.limit) + " MiB cap (headroom " +
      mib(this.headroom) + " MiB): refusing new connections and shedding the largest incomplete messages");
  }

  private endEpisode(now: u64): void {
    this.pressure = false;
    info("memory pressure over after " + (now - this.episodeStart).toString() + " ms: " + this.episodeRefused.toString() +
      " connections refused, " + this.episodeShed.toString() + " shed");
  }
}

function mib(bytes: i64): string {
  return (<f64>Math.round(<f64>bytes / 104857.6) / 10).toString();
}
