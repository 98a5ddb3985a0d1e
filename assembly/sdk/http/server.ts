// An HTTP/1.1 origin server on the SDK's Server (which owns the event loop:
// accepting, reading, writing with backpressure, timers). A plugin gives it
// an HttpApp, whose handle() answers one complete request at a time:
//
//   class App extends HttpApp {
//     handle(req: Request, res: Response): void {
//       if (req.pathIs("/")) res.text(200, "hello\n");
//       else res.error(404, "no such path");
//     }
//   }
//   serve((ctx: Context): string | null => serveHttp(ctx, new App(), new HttpOptions()));
//
// Per connection, requests are answered in the order they arrive, each one
// as soon as it is complete, so pipelined requests (several sent before any
// answer) get their responses in order. Keep-alive is HTTP/1.1's default;
// HTTP/1.0 keeps the connection only when it sends `Connection: keep-alive`.
//
// Closing: after a response that ends the connection (the client asked, or
// its request was rejected, or it stalled: 408), the server sends what is
// queued, shuts down its sending side, and then keeps reading and dropping
// whatever the client still sends until the client closes or linger-ms
// pass. Closing at once would be simpler but wrong: a socket closed with
// unread input sends a reset, and a reset can destroy the response in the
// client's buffers before the client reads it (typically a 413 answered
// while the client is still uploading). A client that never reads that last
// response is left to the host's idle timeout (policy idleTimeoutMs).
//
// Timers: a request that has begun must arrive in time: its whole head
// within idle-ms of its first byte, then each read of its body within
// idle-ms of the previous one (slow clients are fine, stalled ones are
// not), else 408. A connection with no request under way has no timer:
// idle keep-alive connections are left to the host's idle timeout.
//
// Draining (a reload, or the host stopping): every response from then on
// says `Connection: close` and ends its connection as above; keep-alive
// connections that stay idle are closed by the Server (server.ts, Draining).
//
// Memory: an idle keep-alive connection holds its record only. A request's
// body is buffered whole, drawing on the instance's body budget (503 when
// it is spent); the budget is repaid once the response has been sent. Under
// memory pressure a new connection is answered 503 and closed, and the
// connections holding the largest incomplete requests are answered 413.

import { Context } from "../context";
import { warn } from "../log";
import { SocketAddress } from "../net";
import { Connection, Handler, Server } from "../server";
import { Shutdown, TcpStream } from "../tcp";
import { BodyBudget } from "./budget";
import { HttpOptions } from "./options";
import { Parser, Request, Step } from "./parser";
import { Response, dates, writeContinue } from "./response";
import { httpStats, statusClassCounters } from "./stats";

/** What a plugin writes: the answer to each request. */
export abstract class HttpApp {
  /**
   * Answers `req` (complete, its body whole) through `res`: send, sendText,
   * text, json or error, once. `req` and its body are valid until this
   * returns. A handler that writes no response gets a 500 written for it.
   */
  abstract handle(req: Request, res: Response): void;
}

export class HttpConnection extends Connection {
  readonly parser: Parser;
  /** A response that closes the connection is queued: input is dropped from now on. */
  lingering: bool = false;
  /** Our sending side is shut down; waiting for the client to close (or linger-ms). */
  halfClosed: bool = false;
  /** Input bytes already counted in httpStats.bytesIn (those the parser left last time). */
  counted: i32 = 0;

  constructor(key: i32, stream: TcpStream, options: HttpOptions, budget: BodyBudget) {
    super(key, stream);
    this.parser = new Parser(options, budget);
  }
}

/** The protocol as a Server handler; HttpServer wires it up. */
export class HttpProtocol extends Handler<HttpConnection> {
  // One response writer serves every request: a request is answered
  // completely before the next one is looked at.
  private readonly res: Response = new Response();
  private readonly budget: BodyBudget;

  constructor(private readonly app: HttpApp, private readonly options: HttpOptions) {
    super();
    this.budget = new BodyBudget(options.bodyBudget);
    if (options.metrics) this.res.statusCounters = statusClassCounters();
  }

  create(key: i32, stream: TcpStream): HttpConnection {
    return new HttpConnection(key, stream, this.options, this.budget);
  }

  onOpen(c: HttpConnection, server: Server<HttpConnection>): void {
    httpStats.connections++;
    httpStats.open++;
  }

  onClose(c: HttpConnection, server: Server<HttpConnection>): void {
    httpStats.open--;
    c.parser.repay();
    c.parser.release(); // the Server frees the connection's own buffers
  }

  onData(c: HttpConnection, server: Server<HttpConnection>): void {
    httpStats.bytesIn += <u64>(c.input.length - c.counted);
    if (c.lingering) {
      c.input.clear();
      c.counted = 0;
      return;
    }
    dates.refresh();
    const out = c.output;
    const before = out.length;
    const p = c.parser;
    const res = this.res;
    while (true) {
      const step = p.parse(c.input);
      if (step == Step.NeedMore) break;
      if (step == Step.HeadDone) {
        // The client may be waiting for this before it sends the body;
        // if body bytes are here already, it did not wait.
        if (p.req.expectContinue && c.input.length == 0) writeContinue(out);
        continue;
      }
      httpStats.requests++;
      if (step == Step.Fail) {
        httpStats.rejected++;
        res.startFailure(out, p.req);
        res.error(p.status, p.reason);
        this.beginClosing(c, server);
        break;
      }
      res.start(out, p.req);
      // Draining (the host is replacing or stopping this instance): this response ends the connection.
      if (server.draining) res.close = true;
      p.req.stream = c.stream;
      this.app.handle(p.req, res);
      if (!res.sent) {
        warn("HTTP handler wrote no response to " + p.req.path + ": answered 500");
        res.error(500, "the handler wrote no response");
      }
      p.next(c.input);
      server.clearTimer(c); // the next request gets its own deadline
      if (res.close) {
        this.beginClosing(c, server); // pipelined requests after it are not answered
        break;
      }
    }
    httpStats.bytesOut += <u64>(out.length - before);
    c.counted = c.input.length;

    if (c.lingering) {
      this.sendAndHalfClose(c, server);
      return;
    }
    if (c.parser.held > 0) {
      server.flush(c); // (what the Server does next anyway) to see whether the response went out
      if (c.closed) return;
      this.repay(c);
    }
    if (p.idle(c.input)) server.clearTimer(c);
    else if (p.inBody || !c.timer.armed) server.setTimer(c, this.options.idleMs);
  }

  // Live handover on a reload (README "Reload and handover"): a keep-alive
  // connection idle between requests (no byte of a next request read,
  // nothing to send, no body budget held, not closing) moves to the new
  // version, with an empty state. A request under way finishes here,
  // answered with Connection: close; the connection is asked again after
  // each of its events, so one that goes idle before it is answered moves
  // then.
  adopts(): bool { return this.options.handover; }

  onHandover(c: HttpConnection, server: Server<HttpConnection>): ArrayBuffer | null {
    if (c.lingering || c.halfClosed || c.pending > 0 || c.parser.held > 0 || c.input.length > 0 || !c.parser.idle(c.input)) return null;
    return new ArrayBuffer(0);
  }

  onAdopt(c: HttpConnection, state: ArrayBuffer, server: Server<HttpConnection>): bool {
    httpStats.connections++;
    httpStats.open++;
    return true;
  }

  refusal(): ArrayBuffer | null {
    // No Date: built once, at start. A client refused here sent nothing the server read.
    const body = "Service Unavailable: no memory for another connection\n";
    return String.UTF8.encode("HTTP/1.1 503 Service Unavailable\r\nServer: wasmux\r\nContent-Type: text/plain; charset=utf-8\r\n" +
      "Content-Length: " + body.length.toString() + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body);
  }

  incomplete(c: HttpConnection): i64 {
    return <i64>c.input.length + <i64>c.parser.holding;
  }

  // The largest request under way when memory ran short: 413 (or 431 for
  // a head still arriving), then the usual closing (the rest of the request is read and dropped, so the
  // answer is not lost to a reset).
  onShed(c: HttpConnection, server: Server<HttpConnection>): void {
    if (c.lingering) return; // already answered; it holds nothing
    dates.refresh();
    httpStats.requests++;
    httpStats.rejected++;
    const before = c.output.length;
    this.res.startFailure(c.output, c.parser.req);
    if (c.parser.inBody) this.res.error(413, "request too large for the memory left");
    else this.res.error(431, "request head too large for the memory left");
    httpStats.bytesOut += <u64>(c.output.length - before);
    c.parser.release();
    c.parser.repay();
    this.beginClosing(c, server);
    this.sendAndHalfClose(c, server);
  }

  onTimer(c: HttpConnection, server: Server<HttpConnection>): void {
    if (c.lingering) { // linger-ms are over
      server.drop(c);
      return;
    }
    if (c.parser.idle(c.input)) return;
    dates.refresh();
    const before = c.output.length;
    httpStats.requests++;
    httpStats.rejected++;
    this.res.startFailure(c.output, c.parser.req);
    this.res.error(408, "request not completed within idle-ms");
    httpStats.bytesOut += <u64>(c.output.length - before);
    this.beginClosing(c, server);
    this.sendAndHalfClose(c, server);
  }

  onDrained(c: HttpConnection, server: Server<HttpConnection>): void {
    if (c.lingering && !c.halfClosed) this.halfClose(c, server);
    else if (c.parser.held > 0) this.repay(c);
  }

  // Once every body this connection drew for has been answered and the
  // answers sent, the budget is repaid. (The buffers the body needed went
  // back already: the parser's at `next`, the input and output the Server's.)
  private repay(c: HttpConnection): void {
    if (c.closed || c.lingering || c.parser.inBody || c.pending > 0) return;
    c.parser.repay();
  }

  // The last response is queued: stop parsing, drop what is left.
  private beginClosing(c: HttpConnection, server: Server<HttpConnection>): void {
    c.lingering = true;
    c.input.clear();
    c.counted = 0;
    server.clearTimer(c);
  }

  // Sends the queued output now; if it all went, shuts down our side,
  // otherwise onDrained does once the client has read it.
  private sendAndHalfClose(c: HttpConnection, server: Server<HttpConnection>): void {
    if (c.halfClosed || c.closed) return;
    server.flush(c);
    if (!c.closed && !c.halfClosed && c.pending == 0) this.halfClose(c, server);
  }

  private halfClose(c: HttpConnection, server: Server<HttpConnection>): void {
    c.halfClosed = true;
    c.stream.shutdown(Shutdown.Send);
    if (c.peerDone) server.drop(c);
    else server.setTimer(c, this.options.lingerMs);
  }
}

/** An HTTP server: listen on one or more addresses, then run. */
export class HttpServer {
  readonly server: Server<HttpConnection>;

  constructor(app: HttpApp, options: HttpOptions = new HttpOptions()) {
    this.server = new Server<HttpConnection>(new HttpProtocol(app, options));
  }

  /** Listens on `address`. Returns null or an error message. */
  listen(address: SocketAddress): string | null {
    return this.server.listen(address);
  }

  /** Runs the loop; returns only if every listener failed (an error message). */
  run(): string | null {
    return this.server.run();
  }
}

/**
 * Serves `app` on every address of ctx.listen (what `wasmux run --listen`
 * gave). Returns an error message, or runs until the host stops the instance.
 */
export function serveHttp(ctx: Context, app: HttpApp, options: HttpOptions = new HttpOptions()): string | null {
  if (ctx.listen.length == 0) return "an HTTP plugin needs at least one --listen address";
  httpStats.instance = ctx.instance;
  const http = new HttpServer(app, options);
  for (let i = 0; i < ctx.listen.length; i++) {
    const err = http.listen(ctx.listen[i]);
    if (err !== null) return err;
  }
  return http.run();
}
