// Writing responses into a connection's output buffer.
//
// Everything constant (status lines, header names, content types, fixed
// bodies) is encoded once at start-up as a Text and appended with one copy;
// only the Date (cached per second, date.ts) and Content-Length change
// between responses. A response is always complete when it is written:
// status line, headers, then the body (none for HEAD).

import { ByteBuffer } from "../buffer";
import { CounterSeries } from "../metrics";
import { warn } from "../log";
import { DATE_LENGTH, DateCache } from "./date";
import { Method, Request, isFieldByte, isToken } from "./parser";

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
status(201, "Created");
status(202, "Accepted");
status(204, "No Content");
status(206, "Partial Content");
status(301, "Moved Permanently");
status(302, "Found");
status(303, "See Other");
status(304, "Not Modified");
status(307, "Temporary Redirect");
status(308, "Permanent Redirect");
status(400, "Bad Request");
status(401, "Unauthorized");
status(403, "Forbidden");
status(404, "Not Found");
status(405, "Method Not Allowed");
status(406, "Not Acceptable");
status(408, "Request Timeout");
status(409, "Conflict");
status(410, "Gone");
status(411, "Length Required");
status(412, "Precondition Failed");
status(413, "Content Too Large");
status(414, "URI Too Long");
status(415, "Unsupported Media Type");
status(416, "Range Not Satisfiable");
status(417, "Expectation Failed");
status(421, "Misdirected Request");
status(422, "Unprocessable Content");
status(426, "Upgrade Required");
status(428, "Precondition Required");
status(429, "Too Many Requests");
status(431, "Request Header Fields Too Large");
status(500, "Internal Server Error");
status(501, "Not Implemented");
status(502, "Bad Gateway");
status(503, "Service Unavailable");
status(504, "Gateway Timeout");
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
  /** The connection closes after this response (it says `Connection: close`). Set it to close. */
  close: bool = false;
  /** The response has been written (each request gets exactly one). */
  sent: bool = false;
  // An HTTP/1.0 client asked to keep the connection: tell it that it may.
  private keepAlive10: bool = false;
  /** When set, an Allow header (the methods the resource supports) is sent. */
  allow: Text | null = null;
  /** Per status class (2xx..5xx), the counter each response adds 1 to (HttpOptions.metrics), or null. */
  statusCounters: StaticArray<CounterSeries> | null = null;
  // Header lines added with header(), each "\r\nName: value".
  private readonly extra: ByteBuffer = new ByteBuffer(0);

  /** Starts the answer to `req` (a complete request), into `out`. */
  start(out: ByteBuffer, req: Request): void {
    this.out = out;
    this.headOnly = req.method == Method.HEAD;
    this.close = !req.keepAlive;
    this.keepAlive10 = req.minor == 0 && req.keepAlive;
    this.allow = null;
    this.extra.clear();
    this.sent = false;
  }

  /** Starts the answer to a request that was rejected or never completed: it closes the connection. */
  startFailure(out: ByteBuffer, req: Request): void {
    this.out = out;
    this.headOnly = req.method == Method.HEAD; // known once the request line was read
    this.close = true;
    this.keepAlive10 = false;
    this.allow = null;
    this.extra.clear();
    this.sent = false;
  }

  /** Writes a whole response whose body is the `len` bytes at `ptr`. */
  send(code: i32, contentType: Text, ptr: usize, len: i32): void {
    if (this.sent) {
      // A second response would be read as the answer to the next request.
      warn("HTTP response already written: a second one (status " + code.toString() + ") was dropped");
      return;
    }
    this.sent = true;
    if (code < 200 || code >= MAX_STATUS) {
      // 1xx are interim (the server sends 100 itself), and nothing is above 599.
      warn("HTTP status " + code.toString() + " cannot answer a request: sent 500 instead");
      code = 500;
    }
    const counters = this.statusCounters;
    if (counters !== null) unchecked(counters[code / 100 - 2]).inc(); // 200..599 here
    const out = this.out!;
    const line = STATUS_LINES[code];
    if (line !== null) {
      put(out, line);
    } else {
      // A status without a reason phrase here: the phrase may be empty (RFC 9112 §4).
      out.writeString("HTTP/1.1 ");
      out.writeDecimal(<u64>code);
      out.writeString(" \r\n");
    }
    put(out, SERVER_AND_DATE);
    out.writeBytes(dates.ptr, DATE_LENGTH);
    // 204 and 304 have no body, and so no Content-Type or Content-Length
    // (RFC 9110 §8.6, §15.3.5, §15.4.5): the body given is not sent.
    const bodyless = code == 204 || code == 304;
    if (!bodyless) {
      put(out, CONTENT_TYPE);
      put(out, contentType);
      put(out, CONTENT_LENGTH);
      out.writeDecimal(<u64>len);
    }
    const allow = this.allow;
    if (allow !== null) {
      put(out, ALLOW);
      put(out, allow);
    }
    const extra = this.extra;
    if (extra.length > 0) out.writeBytes(extra.ptr, extra.length);
    if (code == 503) put(out, RETRY_AFTER); // the budget frees up as responses go out
    if (this.close) put(out, CONNECTION_CLOSE);
    else if (this.keepAlive10) put(out, CONNECTION_KEEP_ALIVE);
    put(out, END_OF_HEAD);
    if (!this.headOnly && !bodyless) out.writeBytes(ptr, len);
  }

  /**
   * Adds a header line to the response about to be sent (before send(),
   * text() or json()). The server writes Date, Server, Content-Type,
   * Content-Length and Connection itself. Returns false, and adds nothing,
   * when `name` is not a token or `value` holds a control character (CR or
   * LF would let a value forge headers of its own).
   */
  header(name: string, value: string): bool {
    const n = String.UTF8.byteLength(name);
    const v = String.UTF8.byteLength(value);
    const extra = this.extra;
    const mark = extra.length;
    extra.writeString("\r\n");
    extra.writeString(name);
    extra.writeString(": ");
    extra.writeString(value);
    const p = extra.ptr + <usize>mark + 2;
    let ok = n > 0;
    for (let i = 0; ok && i < n; i++) ok = isToken(load<u8>(p + <usize>i));
    for (let i = 0; ok && i < v; i++) ok = isFieldByte(load<u8>(p + <usize>(n + 2 + i)));
    if (!ok) extra.truncate(mark);
    return ok;
  }

  /** A text/plain (UTF-8) response. Encodes `body` per call: for constant bodies, sendText with a Text. */
  text(code: i32, body: string): void {
    this.sendString(code, TEXT_PLAIN, body);
  }

  /** An application/json response; `body` is the JSON text. */
  json(code: i32, body: string): void {
    this.sendString(code, APPLICATION_JSON, body);
  }

  /** A response whose body is `body`, encoded as UTF-8. */
  sendString(code: i32, contentType: Text, body: string): void {
    const b = String.UTF8.encode(body);
    this.send(code, contentType, changetype<usize>(b), b.byteLength);
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
