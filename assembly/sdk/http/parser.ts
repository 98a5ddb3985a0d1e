// An incremental HTTP/1.1 request parser (RFC 9112).
//
// It reads straight from a connection's input buffer and keeps its place
// between reads, so a request may arrive split at any byte: `parse` is
// called after every read and returns NeedMore until it can say something.
// Each complete line of the head is checked and consumed as it arrives; only
// the request-target is copied out (into `req.target`), the other header
// lines leave behind the few facts the server acts on (framing, Host,
// Connection, Expect) and, when HttpOptions.keepHeaders is on, a copy in
// `req.fields` for `req.header(name)`. So the head needs no table of headers
// and no string is allocated per request.
//
// The parser is strict where leniency lets two parsers disagree about where
// a request ends (the root of request smuggling) and returns the status to
// answer with a short reason:
//
//   * Lines end with CRLF only. A bare LF or a bare CR anywhere in the head,
//     in a chunk-size line or in a trailer is 400. (RFC 9112 §2.2 allows
//     accepting a bare LF; a front-end that does not would see a different
//     request.)
//   * Up to MAX_EMPTY_LINES empty lines before a request line are skipped
//     (§2.2 asks to ignore at least one); more is a flood: 400.
//   * Request line: exactly `method SP request-target SP HTTP/d.d`. The
//     method is a token (case-sensitive, at most MAX_METHOD bytes), the
//     target visible ASCII (0x21-0x7E); origin-form ("/p?q") and
//     absolute-form ("http://host/p?q", reduced to "/p?q") are accepted,
//     "*" only with OPTIONS, authority-form only with CONNECT. A target
//     longer than max-uri is 414, as soon as that many bytes have arrived.
//   * Versions: HTTP/1.1, HTTP/1.0, and 1.x later than 1.1 served as 1.1;
//     any other major version is 505.
//   * Header lines: `name: value`. A name is a token; whitespace before the
//     colon, a line without colon, an empty name, obsolete line folding
//     (a line starting with SP or HTAB) are 400; a value may hold visible
//     ASCII, SP, HTAB and bytes 0x80-0xFF, nothing else (NUL, CR, other
//     controls, DEL: 400). The header section may not exceed max-header
//     bytes (431, as soon as that many have arrived).
//   * HTTP/1.1 needs exactly one Host header, with a valid value (400).
//   * Framing: one Content-Length, 1*DIGIT (duplicates, even equal ones,
//     lists, signs, spaces inside: 400; above max-body: 413). Or
//     Transfer-Encoding whose last coding is chunked, applied once; other
//     codings before it are not supported (501); chunked not last, chunked
//     twice or an empty value: 400. Both Content-Length and
//     Transfer-Encoding: 400. Transfer-Encoding in HTTP/1.0: 400 (§6.1).
//   * Chunked bodies: a chunk size is 1*HEXDIG (overflowing 63 bits: 400)
//     optionally followed by `;extensions` (ignored, no control bytes), the
//     chunk data must be followed by CRLF, the decoded total may not exceed
//     max-body (413, as soon as a chunk size announces it). Trailer fields
//     are checked like header lines (their own max-header budget) and
//     dropped.
//   * Expect: 100-continue is reported to the server (req.expectContinue);
//     any other expectation is 417. HTTP/1.0 requests' Expect is ignored.
//   * Bodies draw on the instance's body budget (budget.ts) as their size
//     becomes known (the Content-Length, each chunk size); when it cannot
//     cover them: 503.
//
// Every Fail leaves the input in an unknown state: the server must answer
// and close the connection (server.ts does).

import { ByteBuffer } from "../buffer";
import { SocketAddress } from "../net";
import { TcpStream } from "../tcp";
import { EMPTY_BUFFER, giveBuffer, takeBuffer } from "../pool";
import {
  NOT_A_NUMBER, TOO_LARGE, equalsAscii, equalsIgnoreCase, hexDigitValue, isAlpha, isDigit,
  parseDecimal, parseHex,
} from "../ascii";
import { BodyBudget } from "./budget";
import { HttpOptions } from "./options";

const CR: u32 = 13;
const LF: u32 = 10;
const SP: u32 = 32;
const HTAB: u32 = 9;
const COLON: u32 = 58;
const COMMA: u32 = 44;
const SEMICOLON: u32 = 59;
const EQUALS: u32 = 61;
const DQUOTE: u32 = 34;
const BACKSLASH: u32 = 92;
const DEL: u32 = 127;

export const MAX_EMPTY_LINES: i32 = 4;
export const MAX_METHOD: i32 = 32;
/** A chunk-size line (size and extensions) may not be longer. */
export const MAX_CHUNK_LINE: i32 = 4096;
const VERSION_LENGTH: i32 = 8; // "HTTP/1.1"

// tchar (RFC 9110 §5.6.2): the bytes of a token (methods, header names).
const TOKEN = new StaticArray<bool>(256);
// What a Host header may hold (RFC 3986 authority: unreserved, sub-delims,
// pct-encoded, ":" and IPv6 brackets).
const HOST = new StaticArray<bool>(256);
for (let b: u32 = 0; b < 256; b++) {
  TOKEN[b] = isAlpha(b) || isDigit(b);
  HOST[b] = isAlpha(b) || isDigit(b);
}
const TOKEN_EXTRA = "!#$%&'*+-.^_`|~";
for (let i = 0; i < TOKEN_EXTRA.length; i++) TOKEN[TOKEN_EXTRA.charCodeAt(i)] = true;
const HOST_EXTRA = "-._~%!$&'()*+,;=:[]";
for (let i = 0; i < HOST_EXTRA.length; i++) HOST[HOST_EXTRA.charCodeAt(i)] = true;

// @ts-ignore: decorator
@inline export function isToken(b: u32): bool { return unchecked(TOKEN[b & 255]); }

// A byte that may appear in a field value (besides its leading and trailing
// whitespace, which is trimmed): HTAB, SP, VCHAR, obs-text.
// @ts-ignore: decorator
@inline export function isFieldByte(b: u32): bool { return b >= SP ? b != DEL : b == HTAB; }

export enum Method { GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, OTHER }

export enum Step {
  /** No complete request (or head) yet: keep the input, read more, call again. */
  NeedMore,
  /**
   * The head is complete and a body follows: the moment to answer
   * `Expect: 100-continue`. Call parse again to read the body.
   */
  HeadDone,
  /** A complete request is in `req`: answer it, then call `next`. */
  Done,
  /** Not acceptable: answer `status` (with `reason`) and close the connection. */
  Fail,
}

const enum State { Start, RequestLine, Headers, Body, ChunkSize, ChunkData, ChunkDataEnd, Trailers, Done, Failed }

// Internal: a state handler made progress, run the next one.
const AGAIN: i32 = -1;
// line(): no complete line yet / the line ends in a bare LF.
const NO_LINE: i32 = -1;
const BARE_LF: i32 = -2;

/** What the server needs to know about one request. Valid from Step.Done until `next`. */
export class Request {
  method: Method = Method.OTHER;
  /** The connection the request came on (set by HttpProtocol before the app's handle). */
  stream: TcpStream | null = null;
  /**
   * The request-target as a path and query ("/a/b?x=1"): absolute-form
   * targets are reduced to this; "*" (OPTIONS) and authority-form (CONNECT)
   * are kept as sent. No percent-decoding.
   */
  target: ByteBuffer = EMPTY_BUFFER;
  /** Bytes of `target` before the query ("?..."). */
  pathLength: i32 = 0;
  /** 1 for HTTP/1.1 (and later 1.x), 0 for HTTP/1.0. */
  minor: i32 = 1;
  /** Whether the connection may stay open after the response (version default, then Connection). */
  keepAlive: bool = true;
  /** The client waits for "100 Continue" before it sends the body. */
  expectContinue: bool = false;
  /** Content-Length, or -1 when absent (then the body is chunked or empty). */
  contentLength: i64 = -1;
  chunked: bool = false;
  /** The body (decoded, for chunked requests): `bodyLength` bytes at `bodyPtr`. */
  bodyPtr: usize = 0;
  bodyLength: i32 = 0;
  /**
   * The header fields as `name:value\n` lines, names as sent, values
   * trimmed (with HttpOptions.keepHeaders; else empty). Neither a name nor a
   * value can hold ':' before the first colon or "\n": the parser refused those.
   */
  fields: ByteBuffer = EMPTY_BUFFER;

  /** Whether the path (the query excluded) is exactly `s`. Allocates nothing. */
  /**
   * The client's address (tcp.peer-address): behind a proxy that speaks the
   * PROXY protocol to a listener with `proxyProtocol`, the client the proxy
   * named. Null when the host says no (the connection is gone).
   */
  peerAddress(): SocketAddress | null {
    const s = this.stream;
    return s == null ? null : s.peerAddress();
  }

  pathIs(s: string): bool {
    return equalsAscii(this.target.ptr, this.pathLength, s);
  }

  /** Whether the path starts with `prefix`. Allocates nothing. */
  pathStartsWith(prefix: string): bool {
    const n = prefix.length;
    return n <= this.pathLength && equalsAscii(this.target.ptr, n, prefix);
  }

  /** The path without the query, e.g. "/a/b" (a new string; no percent-decoding). */
  get path(): string {
    return this.target.toString(0, this.pathLength);
  }

  /** The query without its "?", e.g. "x=1&y=2", or "" (a new string). */
  get query(): string {
    const n = this.target.length - this.pathLength;
    return n > 1 ? this.target.toString(this.pathLength + 1, n - 1) : "";
  }

  /**
   * The value of the first header field called `name` (any case), or null.
   * Needs HttpOptions.keepHeaders (the default). A new string per call.
   */
  header(name: string): string | null {
    const f = this.fields;
    const p = f.ptr;
    const n = f.length;
    let i = 0;
    while (i < n) {
      let colon = i;
      while (load<u8>(p + <usize>colon) != COLON) colon++;
      let end = colon + 1;
      while (load<u8>(p + <usize>end) != LF) end++;
      if (equalsIgnoreCase(p + <usize>i, colon - i, name)) return f.toString(colon + 1, end - colon - 1);
      i = end + 1;
    }
    return null;
  }

  /** The body as text (decoded as UTF-8; a new string). */
  get text(): string {
    return String.UTF8.decodeUnsafe(this.bodyPtr, <usize>this.bodyLength);
  }
}

/**
 * A connection's parser. It is the request it parses (one object per
 * connection, not two: an idle connection's record is what it costs).
 */
export class Parser extends Request {
  /** The request being parsed: this parser itself. */
  get req(): Request { return this; }
  /** Body bytes drawn from the instance's body budget and not yet repaid. */
  held: i64 = 0;
  /** After Step.Fail: the status to answer with, and why (a constant string). */
  status: i32 = 0;
  reason: string = "";

  private state: State = State.Start;
  // The current line always starts at the front of the input (complete
  // lines are consumed); `scan` is how far it has been searched for its LF.
  private scan: i32 = 0;
  // The partial request line's first and second SP, and how far it was checked.
  private sp1: i32 = -1;
  private sp2: i32 = -1;
  private checked: i32 = 0;
  private emptyLines: i32 = 0;
  private sectionBytes: i32 = 0; // header (or trailer) section so far
  private remaining: i64 = 0; // chunk bytes still to come
  private bodyInInput: i32 = 0; // a Content-Length body left in the input for `next` to consume
  // A chunked body, reassembled (a buffer on loan while one is under way).
  private decoded: ByteBuffer = EMPTY_BUFFER;

  // What the header lines said, for the checks at the end of the head.
  private hosts: i32 = 0;
  private contentLengthSeen: bool = false;
  private bodyTooLarge: bool = false;
  private transferEncodingSeen: bool = false;
  private codings: i32 = 0;
  private chunkedCodings: i32 = 0;
  private chunkedLast: bool = false;
  private connectionClose: bool = false;
  private connectionKeepAlive: bool = false;
  private expect100: bool = false;
  private expectOther: bool = false;

  constructor(private readonly limits: HttpOptions, private readonly budget: BodyBudget) {
    super();
  }

  /** Draws `n` bytes from the body budget; false (and nothing drawn) when it cannot cover them. */
  private draw(n: i64): bool {
    const budget = this.budget;
    if (n > budget.available) return false;
    budget.available -= n;
    this.held += n;
    return true;
  }

  /** Gives back everything drawn (the response to the body has been sent, or the connection closed). */
  repay(): void {
    this.budget.available += this.held;
    this.held = 0;
  }

  /** True between requests: nothing of a next one has arrived. */
  idle(input: ByteBuffer): bool {
    return this.state == State.Start && input.length == 0;
  }

  /** True while a body is being received (after the head). */
  get inBody(): bool {
    return this.state >= State.Body && this.state <= State.Trailers;
  }

  /** Parses what `input` holds, consuming the request's bytes as it goes. */
  parse(input: ByteBuffer): Step {
    while (true) {
      let r: i32;
      switch (this.state) {
        case State.Start: r = this.start(input); break;
        case State.RequestLine: r = this.requestLine(input); break;
        case State.Headers: r = this.headerLine(input); break;
        case State.Body: r = this.body(input); break;
        case State.ChunkSize: r = this.chunkSize(input); break;
        case State.ChunkData: r = this.chunkData(input); break;
        case State.ChunkDataEnd: r = this.chunkDataEnd(input); break;
        case State.Trailers: r = this.trailerLine(input); break;
        case State.Done: return Step.Done;
        default: return Step.Fail;
      }
      if (r != AGAIN) return <Step>r;
    }
  }

  /** After Step.Done and the response: drops the request's body and gets ready for the next request. */
  next(input: ByteBuffer): void {
    input.consume(this.bodyInInput);
    this.bodyInInput = 0;
    this.state = State.Start;
    this.scan = 0;
    this.sp1 = -1;
    this.sp2 = -1;
    this.checked = 0;
    this.emptyLines = 0;
    this.sectionBytes = 0;
    this.remaining = 0;
    this.hosts = 0;
    this.contentLengthSeen = false;
    this.bodyTooLarge = false;
    this.transferEncodingSeen = false;
    this.codings = 0;
    this.chunkedCodings = 0;
    this.chunkedLast = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.expect100 = false;
    this.expectOther = false;
    const r = this.req;
    r.method = Method.OTHER;
    r.target.clear();
    r.pathLength = 0;
    r.minor = 1;
    r.keepAlive = true;
    r.expectContinue = false;
    r.contentLength = -1;
    r.chunked = false;
    r.bodyPtr = 0;
    r.bodyLength = 0;
    this.release();
  }

  /**
   * Gives back the buffers on loan (the request's target, its header
   * fields, a chunked body): after each request, and when the connection
   * is closed. Between requests a connection holds none.
   */
  release(): void {
    const r = this.req;
    if (r.target !== EMPTY_BUFFER) {
      giveBuffer(r.target);
      r.target = EMPTY_BUFFER;
    }
    if (r.fields !== EMPTY_BUFFER) {
      giveBuffer(r.fields);
      r.fields = EMPTY_BUFFER;
    }
    if (this.decoded !== EMPTY_BUFFER) {
      giveBuffer(this.decoded);
      this.decoded = EMPTY_BUFFER;
    }
  }

  /** Bytes of a request under way that the parser holds itself (a chunked body so far). */
  get holding(): i32 {
    return this.decoded.length;
  }

  // --- the head -------------------------------------------------------------

  // Skips the empty lines a client may send before a request line.
  private start(input: ByteBuffer): i32 {
    if (input.length == 0) return Step.NeedMore;
    const b = <u32>load<u8>(input.ptr);
    if (b != CR && b != LF) {
      this.state = State.RequestLine;
      return AGAIN;
    }
    if (b == LF) return this.fail(400, "bare LF");
    if (input.length < 2) return Step.NeedMore;
    if (<u32>load<u8>(input.ptr + 1) != LF) return this.fail(400, "bare CR");
    input.consume(2);
    if (++this.emptyLines > MAX_EMPTY_LINES) return this.fail(400, "too many empty lines before the request line");
    return AGAIN;
  }

  private requestLine(input: ByteBuffer): i32 {
    const n = this.line(input);
    if (n == NO_LINE) return this.partialRequestLine(input);
    if (n == BARE_LF) return this.fail(400, "bare LF");
    const r = this.parseRequestLine(input.ptr, n);
    if (r != AGAIN) return r;
    input.consume(n + 2);
    this.state = State.Headers;
    return AGAIN;
  }

  // A request line still arriving is rejected as soon as it cannot become
  // valid (a TLS handshake or other binary noise fails on its first byte)
  // or is over a limit (a 1 MB target is refused after max-uri bytes, not
  // buffered). Incremental: resumes where the last call stopped.
  private partialRequestLine(input: ByteBuffer): i32 {
    const p = input.ptr;
    const n = input.length;
    let i = this.checked;
    while (i < n && this.sp2 < 0) {
      const b = <u32>load<u8>(p + <usize>i);
      if (this.sp1 < 0) {
        if (b == SP) this.sp1 = i;
        else if (!isToken(b)) return this.failLine(p, n, "invalid character in method");
      } else if (b == SP) {
        this.sp2 = i;
      }
      i++;
    }
    this.checked = i;
    if (this.sp1 < 0 ? n > MAX_METHOD : this.sp1 > MAX_METHOD) return this.fail(400, "method too long");
    if (this.sp1 < 0) return Step.NeedMore;
    const target = (this.sp2 < 0 ? n : this.sp2) - this.sp1 - 1;
    if (target > this.limits.maxUri) return this.fail(414, "request target longer than max-uri");
    // The version, and maybe the CR of the line's end, are all that may follow.
    if (this.sp2 >= 0 && n - this.sp2 - 1 > VERSION_LENGTH + 1) return this.failLine(p, n, "malformed HTTP version");
    return Step.NeedMore;
  }

  // method SP request-target SP HTTP-version, `n` bytes at `p` (no CRLF).
  private parseRequestLine(p: usize, n: i32): i32 {
    let sp1 = 0;
    while (sp1 < n && isToken(load<u8>(p + <usize>sp1))) sp1++;
    if (sp1 == n) return this.failLine(p, n, "malformed request line");
    if (<u32>load<u8>(p + <usize>sp1) != SP) return this.failLine(p, n, "invalid character in method");
    if (sp1 == 0) return this.failLine(p, n, "empty method");
    if (sp1 > MAX_METHOD) return this.fail(400, "method too long");
    let sp2 = sp1 + 1;
    while (sp2 < n && <u32>load<u8>(p + <usize>sp2) != SP) sp2++;
    if (sp2 == n) return this.failLine(p, n, "no HTTP version in the request line");
    const t = p + <usize>(sp1 + 1);
    const tlen = sp2 - sp1 - 1;
    if (tlen == 0) return this.failLine(p, n, "empty request target");
    if (tlen > this.limits.maxUri) return this.fail(414, "request target longer than max-uri");
    for (let i = 0; i < tlen; i++) {
      const b = <u32>load<u8>(t + <usize>i);
      if (b <= SP || b >= DEL) return this.failLine(p, n, b == 0 ? "NUL byte in request target" : "invalid character in request target");
    }

    // HTTP-version = "HTTP/" DIGIT "." DIGIT, exactly.
    const v = p + <usize>(sp2 + 1);
    if (n - sp2 - 1 != VERSION_LENGTH || !equalsAscii(v, 5, "HTTP/") || !isDigit(load<u8>(v + 5)) ||
        <u32>load<u8>(v + 6) != 46 || !isDigit(load<u8>(v + 7))) {
      return this.failLine(p, n, "malformed HTTP version");
    }
    if (<u32>load<u8>(v + 5) != 49) return this.fail(505, "only HTTP/1.x is supported"); // major != '1'
    const req = this.req;
    req.minor = <u32>load<u8>(v + 7) == 48 ? 0 : 1;
    req.method = methodOf(p, sp1);
    return this.setTarget(t, tlen);
  }

  // Keeps the target in origin form (see Request.target).
  private setTarget(t: usize, len: i32): i32 {
    const req = this.req;
    const out = takeBuffer();
    req.target = out;
    const first = <u32>load<u8>(t);
    if (first == 47) { // '/': origin-form, the common case
      out.writeBytes(t, len);
    } else if (first == 42 && len == 1) { // '*'
      if (req.method != Method.OPTIONS) return this.fail(400, "asterisk-form target is only for OPTIONS");
      out.writeBytes(t, len);
    } else if (req.method == Method.CONNECT) { // authority-form (host:port)
      out.writeBytes(t, len);
    } else {
      // absolute-form: scheme "://" authority [path-abempty] ["?" query]
      let skip = 0;
      if (len >= 7 && equalsIgnoreCase(t, 7, "http://")) skip = 7;
      else if (len >= 8 && equalsIgnoreCase(t, 8, "https://")) skip = 8;
      else return this.fail(400, "request target is not a path or an http(s) URI");
      let i = skip;
      while (i < len && <u32>load<u8>(t + <usize>i) != 47 && <u32>load<u8>(t + <usize>i) != 63) i++; // to '/' or '?'
      if (i == skip) return this.fail(400, "request target has an empty authority");
      if (i == len || <u32>load<u8>(t + <usize>i) == 63) out.writeByte(47); // no path: "/"
      out.writeBytes(t + <usize>i, len - i);
    }
    const q = out.indexOf(63); // '?'
    req.pathLength = q < 0 ? out.length : q;
    return AGAIN;
  }

  private headerLine(input: ByteBuffer): i32 {
    const n = this.line(input);
    if (n == NO_LINE) {
      if (this.sectionBytes + input.length > this.limits.maxHeader) return this.fail(431, "header section larger than max-header");
      return Step.NeedMore;
    }
    if (n == BARE_LF) return this.fail(400, "bare LF");
    this.sectionBytes += n + 2;
    if (this.sectionBytes > this.limits.maxHeader) return this.fail(431, "header section larger than max-header");
    if (n == 0) {
      input.consume(2);
      return this.endOfHead();
    }
    const r = this.fieldLine(input.ptr, n, false);
    if (r != AGAIN) return r;
    input.consume(n + 2);
    return AGAIN;
  }

  // name ":" OWS value OWS, `n` bytes at `p`. Header lines leave what the
  // server needs in the parser's fields; trailer lines are only checked.
  private fieldLine(p: usize, n: i32, trailer: bool): i32 {
    const first = <u32>load<u8>(p);
    if (first == SP || first == HTAB) return this.failLine(p, n, "obsolete line folding");
    let colon = 0;
    while (colon < n && <u32>load<u8>(p + <usize>colon) != COLON) colon++;
    if (colon == n) return this.failLine(p, n, "header line without colon");
    if (colon == 0) return this.failLine(p, n, "empty header name");
    for (let i = 0; i < colon; i++) {
      const b = <u32>load<u8>(p + <usize>i);
      if (!isToken(b)) return this.failLine(p, n, b == SP || b == HTAB ? "whitespace before colon" : "invalid character in header name");
    }
    let vs = colon + 1;
    let ve = n;
    while (vs < ve && isWhitespace(load<u8>(p + <usize>vs))) vs++;
    while (ve > vs && isWhitespace(load<u8>(p + <usize>(ve - 1)))) ve--;
    for (let i = vs; i < ve; i++) {
      const b = <u32>load<u8>(p + <usize>i);
      if (!isFieldByte(b)) return this.failLine(p, n, b == 0 ? "NUL byte in header value" : "invalid character in header value");
    }
    if (trailer) return AGAIN;
    if (this.limits.keepHeaders) {
      if (this.req.fields === EMPTY_BUFFER) this.req.fields = takeBuffer();
      const f = this.req.fields;
      f.writeBytes(p, colon + 1);
      f.writeBytes(p + <usize>vs, ve - vs);
      f.writeByte(<u8>LF);
    }
    return this.headerField(p, colon, p + <usize>vs, ve - vs);
  }

  // The headers that decide framing and the connection; the others are ignored.
  private headerField(name: usize, nameLen: i32, v: usize, len: i32): i32 {
    switch (nameLen) {
      case 4:
        if (equalsIgnoreCase(name, 4, "host")) {
          if (++this.hosts > 1) return this.fail(400, "more than one Host header");
          for (let i = 0; i < len; i++) {
            if (!unchecked(HOST[load<u8>(v + <usize>i)])) return this.fail(400, "invalid Host header");
          }
        }
        break;
      case 6:
        if (equalsIgnoreCase(name, 6, "expect")) {
          if (equalsIgnoreCase(v, len, "100-continue")) this.expect100 = true;
          else this.expectOther = true;
        }
        break;
      case 10:
        if (equalsIgnoreCase(name, 10, "connection")) this.connectionOptions(v, len);
        break;
      case 14:
        if (equalsIgnoreCase(name, 14, "content-length")) {
          if (this.contentLengthSeen) return this.fail(400, "more than one Content-Length");
          this.contentLengthSeen = true;
          const cl = parseDecimal(v, len, this.limits.maxBody);
          if (cl == NOT_A_NUMBER) return this.fail(400, "invalid Content-Length");
          if (cl == TOO_LARGE) this.bodyTooLarge = true; // answered once the head is complete
          else this.req.contentLength = cl;
        }
        break;
      case 17:
        if (equalsIgnoreCase(name, 17, "transfer-encoding")) {
          this.transferEncodingSeen = true;
          this.transferCodings(v, len);
        }
        break;
    }
    return AGAIN;
  }

  // #transfer-coding: counts the codings and notes whether chunked is last.
  // (Several Transfer-Encoding lines form one list, in order.)
  private transferCodings(v: usize, len: i32): void {
    let i = 0;
    while (i <= len) {
      let end = i;
      while (end < len && <u32>load<u8>(v + <usize>end) != COMMA) end++;
      let s = i;
      let e = end;
      while (s < e && isWhitespace(load<u8>(v + <usize>s))) s++;
      while (e > s && isWhitespace(load<u8>(v + <usize>(e - 1)))) e--;
      if (e > s) { // empty list elements are allowed and mean nothing
        this.codings++;
        this.chunkedLast = equalsIgnoreCase(v + <usize>s, e - s, "chunked");
        if (this.chunkedLast) this.chunkedCodings++;
      }
      i = end + 1;
    }
  }

  // #connection-option: "close" and "keep-alive" matter, others are ignored.
  private connectionOptions(v: usize, len: i32): void {
    let i = 0;
    while (i <= len) {
      let end = i;
      while (end < len && <u32>load<u8>(v + <usize>end) != COMMA) end++;
      let s = i;
      let e = end;
      while (s < e && isWhitespace(load<u8>(v + <usize>s))) s++;
      while (e > s && isWhitespace(load<u8>(v + <usize>(e - 1)))) e--;
      if (equalsIgnoreCase(v + <usize>s, e - s, "close")) this.connectionClose = true;
      else if (equalsIgnoreCase(v + <usize>s, e - s, "keep-alive")) this.connectionKeepAlive = true;
      i = end + 1;
    }
  }

  // The checks that need the whole head, then the framing of the body.
  private endOfHead(): i32 {
    const req = this.req;
    if (req.minor == 1 && this.hosts == 0) return this.fail(400, "missing Host header");
    if (this.transferEncodingSeen) {
      if (req.minor == 0) return this.fail(400, "Transfer-Encoding in an HTTP/1.0 request");
      if (this.contentLengthSeen) return this.fail(400, "both Content-Length and Transfer-Encoding");
      if (this.codings == 0) return this.fail(400, "empty Transfer-Encoding");
      if (this.chunkedCodings > 1) return this.fail(400, "chunked applied more than once");
      if (!this.chunkedLast) return this.fail(400, "chunked is not the final transfer coding");
      if (this.codings > 1) return this.fail(501, "transfer codings other than chunked are not supported");
      req.chunked = true;
    }
    if (this.bodyTooLarge) return this.fail(413, "body larger than max-body");
    if (req.minor == 1) {
      if (this.expectOther) return this.fail(417, "the only expectation supported is 100-continue");
      req.expectContinue = this.expect100;
    }
    req.keepAlive = !this.connectionClose && (req.minor == 1 || this.connectionKeepAlive);
    this.sectionBytes = 0;
    if (req.chunked) {
      this.decoded = takeBuffer();
      this.state = State.ChunkSize;
      return Step.HeadDone;
    }
    if (req.contentLength > 0) {
      if (!this.draw(req.contentLength)) return this.fail(503, "too many request bodies in progress");
      this.state = State.Body;
      return Step.HeadDone;
    }
    this.state = State.Done;
    return Step.Done;
  }

  // --- the body -------------------------------------------------------------

  // Content-Length: waits until the whole body is in the input and hands it
  // over in place (no copy); `next` consumes it.
  private body(input: ByteBuffer): i32 {
    const need = <i32>this.req.contentLength;
    if (input.length < need) return Step.NeedMore;
    this.req.bodyPtr = input.ptr;
    this.req.bodyLength = need;
    this.bodyInInput = need;
    this.state = State.Done;
    return Step.Done;
  }

  // chunk-size [ chunk-ext ] CRLF
  private chunkSize(input: ByteBuffer): i32 {
    const n = this.line(input);
    if (n == NO_LINE) return input.length > MAX_CHUNK_LINE ? this.fail(400, "chunk size line too long") : Step.NeedMore;
    if (n == BARE_LF) return this.fail(400, "bare LF");
    if (n > MAX_CHUNK_LINE) return this.fail(400, "chunk size line too long");
    const p = input.ptr;
    let digits = 0;
    while (digits < n && hexDigitValue(load<u8>(p + <usize>digits)) >= 0) digits++;
    if (digits == 0) return this.failLine(p, n, "invalid chunk size");
    const size = parseHex(p, digits);
    if (size == TOO_LARGE) return this.fail(400, "chunk size overflow");
    // chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ), name a
    // token, value a token or a quoted-string (RFC 9112 §7.1.1): checked,
    // then ignored.
    let i = digits;
    while (i < n && isWhitespace(load<u8>(p + <usize>i))) i++;
    if (i == n && i > digits) return this.fail(400, "invalid chunk size"); // whitespace with no extension after it
    if (i < n && <u32>load<u8>(p + <usize>i) != SEMICOLON) return this.failLine(p, n, "invalid chunk size");
    if (!validChunkExtensions(p, i, n)) return this.failLine(p, n, "invalid chunk extension");
    input.consume(n + 2);
    if (size == 0) {
      this.state = State.Trailers;
      return AGAIN;
    }
    if (<i64>this.decoded.length + size > this.limits.maxBody) return this.fail(413, "body larger than max-body");
    if (!this.draw(size)) return this.fail(503, "too many request bodies in progress");
    this.remaining = size;
    this.state = State.ChunkData;
    return AGAIN;
  }

  private chunkData(input: ByteBuffer): i32 {
    const take = <i32>min(this.remaining, <i64>input.length);
    if (take == 0) return Step.NeedMore;
    this.decoded.writeBytes(input.ptr, take);
    input.consume(take);
    this.remaining -= take;
    if (this.remaining > 0) return Step.NeedMore;
    this.state = State.ChunkDataEnd;
    return AGAIN;
  }

  private chunkDataEnd(input: ByteBuffer): i32 {
    const n = input.length;
    if (n >= 1 && <u32>load<u8>(input.ptr) != CR) return this.fail(400, "chunk data not followed by CRLF");
    if (n < 2) return Step.NeedMore;
    if (<u32>load<u8>(input.ptr + 1) != LF) return this.fail(400, "chunk data not followed by CRLF");
    input.consume(2);
    this.state = State.ChunkSize;
    return AGAIN;
  }

  // *( field-line CRLF ) CRLF after the last chunk.
  private trailerLine(input: ByteBuffer): i32 {
    const n = this.line(input);
    if (n == NO_LINE) {
      if (this.sectionBytes + input.length > this.limits.maxHeader) return this.fail(431, "trailer section larger than max-header");
      return Step.NeedMore;
    }
    if (n == BARE_LF) return this.fail(400, "bare LF");
    this.sectionBytes += n + 2;
    if (this.sectionBytes > this.limits.maxHeader) return this.fail(431, "trailer section larger than max-header");
    if (n > 0) {
      const r = this.fieldLine(input.ptr, n, true);
      if (r != AGAIN) return r;
      input.consume(n + 2);
      return AGAIN;
    }
    input.consume(2);
    const d = this.decoded;
    this.req.bodyPtr = d.ptr;
    this.req.bodyLength = d.length;
    this.state = State.Done;
    return Step.Done;
  }

  // --- helpers --------------------------------------------------------------

  // The line at the front of the input: its length without the CRLF,
  // NO_LINE when its LF has not arrived, BARE_LF when the LF has no CR
  // before it. Searches only bytes it has not searched before.
  private line(input: ByteBuffer): i32 {
    const lf = input.indexOf(<u8>LF, this.scan);
    if (lf < 0) {
      this.scan = input.length;
      return NO_LINE;
    }
    this.scan = 0;
    this.sp1 = -1;
    this.sp2 = -1;
    this.checked = 0;
    if (lf == 0 || <u32>load<u8>(input.ptr + <usize>(lf - 1)) != CR) return BARE_LF;
    return lf - 1;
  }

  private fail(status: i32, reason: string): i32 {
    this.status = status;
    this.reason = reason;
    this.state = State.Failed;
    return Step.Fail;
  }

  // A 400 for the line at `p`; a CR inside it is the likelier culprit (a
  // bare CR ends a line for some parsers and not for others): name that.
  private failLine(p: usize, n: i32, reason: string): i32 {
    for (let i = 0; i < n; i++) {
      if (<u32>load<u8>(p + <usize>i) == CR) return this.fail(400, "bare CR");
    }
    return this.fail(400, reason);
  }
}

// @ts-ignore: decorator
@inline function isWhitespace(b: u32): bool { return b == SP || b == HTAB; }

// Bytes [i, n) at p hold zero or more `;name[=value]` chunk extensions,
// with optional whitespace around the `;` and the `=`: the name a token,
// the value a token or a quoted-string.
function validChunkExtensions(p: usize, i: i32, n: i32): bool {
  while (i < n) {
    if (<u32>load<u8>(p + <usize>i) != SEMICOLON) return false;
    i++;
    while (i < n && isWhitespace(load<u8>(p + <usize>i))) i++;
    const name = i;
    while (i < n && isToken(load<u8>(p + <usize>i))) i++;
    if (i == name) return false; // ";" with no name
    while (i < n && isWhitespace(load<u8>(p + <usize>i))) i++;
    if (i == n || <u32>load<u8>(p + <usize>i) == SEMICOLON) continue;
    if (<u32>load<u8>(p + <usize>i) != EQUALS) return false;
    i++;
    while (i < n && isWhitespace(load<u8>(p + <usize>i))) i++;
    if (i < n && <u32>load<u8>(p + <usize>i) == DQUOTE) {
      // quoted-string: qdtext or a backslash-escaped byte, up to the closing quote
      i++;
      let closed = false;
      while (i < n) {
        const b = <u32>load<u8>(p + <usize>i);
        if (b == DQUOTE) { closed = true; i++; break; }
        if (b == BACKSLASH) {
          if (i + 1 >= n || !isFieldByte(load<u8>(p + <usize>(i + 1)))) return false;
          i += 2;
          continue;
        }
        if (!isFieldByte(b)) return false;
        i++;
      }
      if (!closed) return false;
    } else {
      const value = i;
      while (i < n && isToken(load<u8>(p + <usize>i))) i++;
      if (i == value) return false; // "=" with no value
    }
    while (i < n && isWhitespace(load<u8>(p + <usize>i))) i++;
  }
  return true;
}

function methodOf(p: usize, len: i32): Method {
  switch (len) {
    case 3:
      if (equalsAscii(p, 3, "GET")) return Method.GET;
      if (equalsAscii(p, 3, "PUT")) return Method.PUT;
      break;
    case 4:
      if (equalsAscii(p, 4, "HEAD")) return Method.HEAD;
      if (equalsAscii(p, 4, "POST")) return Method.POST;
      break;
    case 5:
      if (equalsAscii(p, 5, "PATCH")) return Method.PATCH;
      if (equalsAscii(p, 5, "TRACE")) return Method.TRACE;
      break;
    case 6:
      if (equalsAscii(p, 6, "DELETE")) return Method.DELETE;
      break;
    case 7:
      if (equalsAscii(p, 7, "OPTIONS")) return Method.OPTIONS;
      if (equalsAscii(p, 7, "CONNECT")) return Method.CONNECT;
      break;
  }
  return Method.OTHER;
}
