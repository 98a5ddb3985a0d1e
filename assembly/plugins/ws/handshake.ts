// The opening handshake (RFC 6455 section 4.2): an HTTP/1.1 GET asking to
// upgrade to "websocket", answered with 101 Switching Protocols and the
// Sec-WebSocket-Accept proof, or refused with an HTTP error that says why:
//
//   405  not a GET (with Allow: GET)
//   400  not HTTP/1.1, a malformed line, no Host, a Sec-WebSocket-Key that
//        is not base64 of 16 bytes
//   426  no "Upgrade: websocket" / "Connection: upgrade", or a
//        Sec-WebSocket-Version other than 13 (with Upgrade and
//        Sec-WebSocket-Version: 13, which tell the client what would work)
//   431  the request is longer than the configured limit
//
// No subprotocol and no extension is ever selected: this server speaks
// plain RFC 6455 frames, so a client offering permessage-deflate gets none.
// Only the request head is read; bytes after it (frames a client sent
// without waiting) stay in the input for the frame reader.

import { ByteBuffer } from "../../sdk/buffer";
import { Sha1, SHA1_DIGEST_SIZE } from "../../sdk/sha1";
import { base64DecodedLength, base64EncodeInto, base64EncodedLength } from "../../sdk/base64";

const GUID = String.UTF8.encode("258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
const hasher = new Sha1();
const digest: usize = memory.data(SHA1_DIGEST_SIZE);

const CR: u8 = 13;
const LF: u8 = 10;
const SP: u8 = 32;
const HT: u8 = 9;

/**
 * The length of the request head at the front of `input` (through the
 * blank line), or -1 while it is incomplete. `from` is how many bytes were
 * already searched, so a request trickling in is not rescanned each time.
 */
export function requestEnd(input: ByteBuffer, from: i32): i32 {
  const p = input.ptr;
  for (let i = max(from, 0); i + 3 < input.length; i++) {
    if (load<u8>(p + <usize>i + 3) == LF && load<u8>(p + <usize>i) == CR &&
        load<u8>(p + <usize>i + 1) == LF && load<u8>(p + <usize>i + 2) == CR) {
      return i + 4;
    }
  }
  return -1;
}

/** Answers a request head longer than the limit. */
export function rejectTooLarge(output: ByteBuffer): void {
  reject(output, "431 Request Header Fields Too Large", "", "request head too large");
}

/**
 * Answers the request head in input[0, headLen) and consumes it. Returns
 * true when the connection is now a WebSocket (101 written to `output`),
 * false when an error response was written instead.
 */
export function answerUpgrade(input: ByteBuffer, headLen: i32, output: ByteBuffer): bool {
  const ok = answer(input.ptr, headLen - 2, output); // without the blank line's CRLF
  input.consume(headLen);
  return ok;
}

function answer(p: usize, len: i32, out: ByteBuffer): bool {
  // Request line: GET SP request-target SP HTTP/1.1
  let eol = lineEnd(p, 0, len);
  const sp1 = indexOfByte(p, 0, eol, SP);
  const sp2 = sp1 < 0 ? -1 : indexOfByte(p, sp1 + 1, eol, SP);
  if (sp1 <= 0 || sp2 <= sp1 + 1) return reject(out, "400 Bad Request", "", "malformed request line");
  if (!isExactly(p, 0, sp1, "GET")) { // methods are case-sensitive
    return reject(out, "405 Method Not Allowed", "Allow: GET\r\n", "a WebSocket upgrade is a GET");
  }
  if (!isExactly(p, sp2 + 1, eol, "HTTP/1.1")) return reject(out, "400 Bad Request", "", "HTTP/1.1 required");

  let host = false;
  let upgrade = false;
  let connection = false;
  let version = -1; // -1 absent, 1 = "13", 0 = anything else
  let keyAt = -1;
  let keyLen = 0;
  let keys = 0;
  // Header fields: name ":" OWS value OWS, one per line.
  for (let start = eol + 2; start < len; start = eol + 2) {
    eol = lineEnd(p, start, len);
    const colon = indexOfByte(p, start, eol, 58); // ':'
    if (colon <= start) return reject(out, "400 Bad Request", "", "malformed header line");
    for (let i = start; i < colon; i++) {
      const c = load<u8>(p + <usize>i);
      if (c == SP || c == HT) return reject(out, "400 Bad Request", "", "malformed header name"); // also rejects obsolete line folding
    }
    let vs = colon + 1;
    let ve = eol;
    while (vs < ve && isSpace(load<u8>(p + <usize>vs))) vs++;
    while (ve > vs && isSpace(load<u8>(p + <usize>ve - 1))) ve--;
    const name = p + <usize>start;
    const nameLen = colon - start;
    if (equalsIgnoreCase(name, nameLen, "host")) host = true;
    else if (equalsIgnoreCase(name, nameLen, "upgrade")) upgrade = upgrade || hasToken(p, vs, ve, "websocket");
    else if (equalsIgnoreCase(name, nameLen, "connection")) connection = connection || hasToken(p, vs, ve, "upgrade");
    else if (equalsIgnoreCase(name, nameLen, "sec-websocket-version")) version = isExactly(p, vs, ve, "13") && version != 0 ? 1 : 0;
    else if (equalsIgnoreCase(name, nameLen, "sec-websocket-key")) { keyAt = vs; keyLen = ve - vs; keys++; }
  }

  if (!upgrade || !connection) {
    return reject(out, "426 Upgrade Required", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", "this is a WebSocket endpoint: send Upgrade: websocket and Connection: Upgrade");
  }
  if (version != 1) {
    return reject(out, "426 Upgrade Required", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version 13 required");
  }
  if (!host) return reject(out, "400 Bad Request", "", "Host header required");
  // The key must be the base64 form of 16 bytes (RFC 6455 4.2.1 item 5).
  if (keys != 1 || base64DecodedLength(p + <usize>keyAt, keyLen) != 16) {
    return reject(out, "400 Bad Request", "", "Sec-WebSocket-Key must be one base64-encoded 16-byte value");
  }

  // The proof that this server read the key: base64(SHA-1(key + GUID)).
  hasher.reset();
  hasher.update(p + <usize>keyAt, keyLen);
  hasher.update(changetype<usize>(GUID), GUID.byteLength);
  hasher.finish(digest);
  out.writeString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
  out.commit(base64EncodeInto(digest, SHA1_DIGEST_SIZE, out.reserve(base64EncodedLength(SHA1_DIGEST_SIZE))));
  out.writeString("\r\n\r\n");
  return true;
}

// Writes an error response; the caller closes the connection after it.
function reject(out: ByteBuffer, status: string, headers: string, reason: string): bool {
  const body = reason + "\n";
  const connection = status.startsWith("426") ? "Upgrade, close" : "close";
  out.writeString("HTTP/1.1 " + status + "\r\n" + headers + "Connection: " + connection +
    "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + body.length.toString() + "\r\n\r\n" + body);
  return false;
}

// End of the line starting at `from` (the index of its CR), or `end`.
function lineEnd(p: usize, from: i32, end: i32): i32 {
  for (let i = from; i + 1 < end; i++) {
    if (load<u8>(p + <usize>i) == CR && load<u8>(p + <usize>i + 1) == LF) return i;
  }
  return end;
}

function indexOfByte(p: usize, from: i32, end: i32, b: u8): i32 {
  for (let i = from; i < end; i++) if (load<u8>(p + <usize>i) == b) return i;
  return -1;
}

function isSpace(c: u8): bool {
  return c == SP || c == HT;
}

// Bytes [from, end) are exactly `text` (ASCII).
function isExactly(p: usize, from: i32, end: i32, text: string): bool {
  if (end - from != text.length) return false;
  for (let i = 0; i < text.length; i++) {
    if (<i32>load<u8>(p + <usize>(from + i)) != text.charCodeAt(i)) return false;
  }
  return true;
}

// The `len` bytes at `s` equal `lower` (lowercase ASCII) ignoring case.
function equalsIgnoreCase(s: usize, len: i32, lower: string): bool {
  if (len != lower.length) return false;
  for (let i = 0; i < len; i++) {
    let c = <i32>load<u8>(s + <usize>i);
    if (c >= 65 && c <= 90) c += 32;
    if (c != lower.charCodeAt(i)) return false;
  }
  return true;
}

// The comma-separated list in bytes [from, end) contains `lower`, ignoring case.
function hasToken(p: usize, from: i32, end: i32, lower: string): bool {
  let i = from;
  while (i < end) {
    let e = indexOfByte(p, i, end, 44); // ','
    if (e < 0) e = end;
    let s = i;
    let t = e;
    while (s < t && isSpace(load<u8>(p + <usize>s))) s++;
    while (t > s && isSpace(load<u8>(p + <usize>t - 1))) t--;
    if (equalsIgnoreCase(p + <usize>s, t - s, lower)) return true;
    i = e + 1;
  }
  return false;
}
