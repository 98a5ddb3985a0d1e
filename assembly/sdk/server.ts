// A connection server on top of Poll: the loop every protocol plugin would
// otherwise write again. It accepts, reads into each connection's input
// buffer, calls the handler, sends the output buffer with backpressure
// (reading pauses while too much output waits for a slow peer), runs
// per-connection timers, and closes cleanly.
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

import { ByteBuffer } from "./buffer";
import { IoError, errorName } from "./error";
import { Events } from "./events";
import { Interest } from "./interest";
import { warn } from "./log";
import { SocketAddress } from "./net";
import { Poll } from "./poll";
import { Slab } from "./slab";
import { TcpListener, TcpStream, Shutdown, lastError } from "./tcp";
import { nowMillis } from "./time";
import { Timer, TimerWheel } from "./timers";

// Listener tokens sit above every connection key.
const LISTENER_TOKEN: u64 = 1 << 32;
// Reads go into the input buffer's free space; it grows only when less than
// MIN_READ is free, so an idle connection keeps its small first buffer.
const MIN_READ: i32 = 1024;
const READ_CHUNK: i32 = 16 * 1024;
// A buffer that grew past this for one large message is given back once empty.
const SHRINK_ABOVE: i32 = 64 * 1024;
const ACCEPT_RETRY_MS: i32 = 50;

/** One connection: its stream, buffers and timer. Extend it with protocol state. */
export class Connection {
  readonly input: ByteBuffer = new ByteBuffer(4096);
  readonly output: ByteBuffer = new ByteBuffer(4096);
  readonly timer: Timer;
  /** Close once the output is sent (set by close()). */
  closing: bool = false;
  /** The peer has shut down its sending side. */
  peerDone: bool = false;
  closed: bool = false;
  private watchingWrite: bool = false;

  constructor(readonly key: i32, readonly stream: TcpStream) {
    this.timer = new Timer(key);
  }

  /** Appends text to the output (sent when the handler returns). */
  write(s: string): void { this.output.writeString(s); }

  /** Sends what is queued, then closes. */
  close(): void { this.closing = true; }

  /** Output bytes not yet taken by the peer. */
  get pending(): i32 { return this.output.length; }
}

export class ServerOptions {
  /** Events per poll.wait. */
  events: u32 = 256;
  /** Stop reading from a connection while more than this much output waits. */
  outputHighWater: i32 = 1 << 20;
  /** Timer resolution. */
  tickMs: u64 = 10;
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
}

export class Server<C extends Connection> {
  readonly poll: Poll = new Poll();
  readonly connections: Slab<C> = new Slab<C>();
  readonly wheel: TimerWheel;
  private listeners: TcpListener[] = [];

  constructor(readonly handler: Handler<C>, readonly options: ServerOptions = new ServerOptions()) {
    this.wheel = new TimerWheel(options.tickMs, nowMillis());
  }

  /** Listens on `address`. Returns null or an error message. */
  listen(address: SocketAddress, backlog: u32 = 1024): string | null {
    const l = TcpListener.bind(address, backlog);
    if (l === null) return "listen on " + address.toString() + " failed: " + errorName(lastError());
    const rc = this.poll.register(l, LISTENER_TOKEN + <u64>this.listeners.length, Interest.READABLE);
    if (rc < 0) return "register failed: " + errorName(rc);
    this.listeners.push(l);
    return null;
  }

  /** Arms c's timer to fire `ms` from now. */
  setTimer(c: C, ms: u64): void { this.wheel.schedule(c.timer, nowMillis() + ms); }

  clearTimer(c: C): void { this.wheel.cancel(c.timer); }

  /** Runs the loop; returns only if every listener failed (an error message). */
  run(): string | null {
    const events = new Events(this.options.events);
    let acceptStalled = false;
    while (true) {
      let timeout = this.wheel.timeoutMs(nowMillis());
      if (acceptStalled && (timeout < 0 || timeout > ACCEPT_RETRY_MS)) timeout = ACCEPT_RETRY_MS;
      const n = this.poll.poll(events, timeout);
      if (acceptStalled) {
        acceptStalled = false;
        for (let l = 0; l < this.listeners.length; l++) acceptStalled = !this.acceptAll(this.listeners[l]) || acceptStalled;
      }
      for (let i: u32 = 0; i < n; i++) {
        const token = events.token(i);
        if (token >= LISTENER_TOKEN) {
          acceptStalled = !this.acceptAll(this.listeners[<i32>(token - LISTENER_TOKEN)]) || acceptStalled;
          continue;
        }
        const c = this.connections.get(<i32>token);
        if (c === null) continue;
        if (events.isWritable(i) || events.isError(i) || events.isHangUp(i)) this.flush(c);
        if (!c.closed) this.pump(c);
      }
      const now = nowMillis();
      const due = this.wheel.advance(now);
      for (let i = 0; i < due.length; i++) {
        const c = this.connections.get(due[i].key);
        if (c === null) continue;
        this.handler.onTimer(c, this);
        this.settle(c);
      }
      this.handler.onTick(now, this);
    }
    return null;
  }

  /** Sends as much of c's output as the peer takes; after a handler wrote to it outside onData. */
  flush(c: C): void {
    const out = c.output;
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
    if (out.length == 0 && out.capacity > SHRINK_ABOVE) out.release();
    if (out.length == 0 && c.closing) this.drop(c);
  }


  /** Closes c now, whatever is queued. */
  drop(c: C): void {
    if (c.closed) return;
    c.closed = true;
    this.wheel.cancel(c.timer);
    c.stream.close();
    this.connections.remove(c.key);
    this.handler.onClose(c, this);
    // The buffers' memory is the heap's, not the collector's: give it back
    // now, or every connection ever accepted would keep its two buffers.
    c.input.release();
    c.output.release();
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
      const key = this.connections.nextKey();
      const c = this.handler.create(key, stream);
      this.connections.insert(c);
      const rc = this.poll.register(stream, <u64>key, Interest.READABLE);
      if (rc < 0) {
        warn("register failed: " + errorName(rc));
        this.drop(c);
        continue;
      }
      this.handler.onOpen(c, this);
      this.settle(c);
      if (!c.closed) this.pump(c);
    }
    return true;
  }

  // Reads until would-block (or until too much output waits), handing each
  // batch to the handler.
  private pump(c: C): void {
    while (!c.closed && !c.peerDone && c.output.length <= this.options.outputHighWater) {
      const into = c.input.spare >= MIN_READ ? c.input.reserve(MIN_READ) : c.input.reserve(READ_CHUNK);
      const n = c.stream.readRaw(into, <u32>c.input.spare);
      if (n == IoError.WouldBlock) return;
      if (n < 0) { this.drop(c); return; }
      if (n == 0) {
        c.peerDone = true;
        this.handler.onEnd(c, this);
        this.settle(c);
        return;
      }
      c.input.commit(n);
      this.handler.onData(c, this);
      if (c.input.length == 0 && c.input.capacity > SHRINK_ABOVE) c.input.release();
      this.settle(c);
    }
  }

  // After the handler ran: send what it wrote, close if it asked to.
  private settle(c: C): void {
    if (c.closed) return;
    if (c.output.length > 0 || c.closing) this.flush(c);
  }
}
