// Writing responses into a connection's output buffer.
//
// Everything constant (status lines, header names, content types, fixed
// bodies) is encoded once at start-up as a Text and appended with one copy;
// only the Date (cached per second, date.ts) and Content-Length change
// between responses. A response is always complete when it is written:
// status line, headers, then the body (none for HEAD).

import { ByteBuffer } from "../../sdk";
import { DATE_LENGTH, DateCache } from "./date";
import { Method, Request } from "./parser";

/** ASCII protocol text, encoded once, appended by copying. */
export class Text {
  private readonly bytes: ArrayBuffer;
  constructor(s: string) { this.bytes = String.UTF8.encode(s); }
  get ptr(): usize { return changetype<usize>(this.bytes); }
  get length(): i32 { return this.bytes.byteLength; }
}

// @ts-ignore: decorator
@inline function put(out: ByteBuffer, t: Text): void { out.writeBytes(t.ptr, t.length); }

export const TEXT_PLAIN = new Text("text/plain; charset=utf-8");
export const APPLICATION_JSON = new Text("application/json");
export const OCTET_STREAM = new Text("application/octet-stream");

/** The Date every response carries; refresh it before writing responses. */
export const dates = new DateCache();

const SERVER_AND_DATE = new Text("Server: wasmux\r\nDate: ");
const CONTENT_TYPE = new Text("\r\nContent-Type: ");
const CONTENT_LENGTH = new Text("\r\nContent-Length: ");
const ALLOW = new Text("\r\nAllow: ");
const RETRY_AFTER = new Text("\r\nRetry-After: 1");
const CONNECTION_CLOSE = new Text("\r\nConnection: close");
const CONNECTION_KEEP_ALIVE = new Text("\r\nConnection: keep-alive");
const END_OF_HEAD = new Text("\r\n\r\n");
const CONTINUE = new Text("HTTP/1.1 100 Continue\r\n\r\n");

// Status lines ("HTTP/1.1 404 Not Found\r\n") and reason phrases by code.
const MAX_STATUS = 600;
const STATUS_LINES = new StaticArray<Text | null>(MAX_STATUS);
const REASONS = new StaticArray<string | null>(MAX_STATUS);
function status(code: i32, reason: string): void {
  REASONS[code] = reason;
  STATUS_LINES[code] = new Text("HTTP/1.1 " + code.toString() + " " + reason + "\r\n");
}
status(200, "OK");
status(400, "Bad Request");
status(404, "Not Found");
status(405, "Method Not Allowed");
status(408, "Request Timeout");
status(413, "Content Too Large");
status(414, "URI Too Long");
status(417, "Expectation Failed");
status(431, "Request Header Fields Too Large");
status(500, "Internal Server Error");
status(501, "Not Implemented");
status(503, "Service Unavailable");
status(505, "HTTP Version Not Supported");

/** The reason phrase of a status this server sends. */
export function reasonPhrase(code: i32): string {
  const r = code > 0 && code < MAX_STATUS ? REASONS[code] : null;
  return r !== null ? r : "Unknown";
}

/** "HTTP/1.1 100 Continue": the go-ahead a client sent `Expect: 100-continue` for. */
export function writeContinue(out: ByteBuffer): void {
  put(out, CONTINUE);
}

/** The response to one request, reused for every request of every connection. */
export class Response {
  private out: ByteBuffer | null = null;
  /** A HEAD request: write the headers a GET would get, and no body. */
  headOnly: bool = false;
  /** The connection closes after this response (it says `Connection: close`). */
  close: bool = false;
  // An HTTP/1.0 client asked to keep the connection: tell it that it may.
  private keepAlive10: bool = false;
  /** When set, an Allow header (the methods the resource supports) is sent. */
  allow: Text | null = null;

  /** Starts the answer to `req` (a complete request), into `out`. */
  start(out: ByteBuffer, req: Request): void {
    this.out = out;
    this.headOnly = req.method == Method.HEAD;
    this.close = !req.keepAlive;
    this.keepAlive10 = req.minor == 0 && req.keepAlive;
    this.allow = null;
  }

  /** Starts the answer to a request that was rejected or never completed: it closes the connection. */
  startFailure(out: ByteBuffer, req: Request): void {
    this.out = out;
    this.headOnly = req.method == Method.HEAD; // known once the request line was read
    this.close = true;
    this.keepAlive10 = false;
    this.allow = null;
  }

  /** Writes a whole response whose body is the `len` bytes at `ptr`. */
  send(code: i32, contentType: Text, ptr: usize, len: i32): void {
    const out = this.out!;
    const line = code > 0 && code < MAX_STATUS ? STATUS_LINES[code] : null;
    put(out, line !== null ? line : STATUS_LINES[500]!);
    put(out, SERVER_AND_DATE);
    out.writeBytes(dates.ptr, DATE_LENGTH);
    put(out, CONTENT_TYPE);
    put(out, contentType);
    put(out, CONTENT_LENGTH);
    out.writeDecimal(<u64>len);
    const allow = this.allow;
    if (allow !== null) {
      put(out, ALLOW);
      put(out, allow);
    }
    if (code == 503) put(out, RETRY_AFTER); // the budget frees up as responses go out
    if (this.close) put(out, CONNECTION_CLOSE);
    else if (this.keepAlive10) put(out, CONNECTION_KEEP_ALIVE);
    put(out, END_OF_HEAD);
    if (!this.headOnly) out.writeBytes(ptr, len);
  }

  /** send() with a body encoded at start-up. */
  sendText(code: i32, contentType: Text, body: Text): void {
    this.send(code, contentType, body.ptr, body.length);
  }

  /** 405 with the Allow header the client needs. */
  methodNotAllowed(allow: Text): void {
    this.allow = allow;
    this.error(405, "method not allowed here");
  }

  /** An error status with a one-line text body: the reason phrase and what was wrong. */
  error(code: i32, detail: string): void {
    // Errors are rare and cheap enough to format (the detail helps whoever debugs a client).
    const body = String.UTF8.encode(reasonPhrase(code) + ": " + detail + "\n");
    this.send(code, TEXT_PLAIN, changetype<usize>(body), body.byteLength);
  }
}
