// RESP2 replies, written straight into a connection's output buffer.
//
// Every reply a command sends goes through these functions, so the wire
// format lives in one place. They append bytes and never allocate: the
// frequent constant replies are static data, numbers are formatted in place,
// values are copied from the store's memory once.

import { ByteBuffer } from "../../sdk";

const CRLF: usize = memory.data<u8>([13, 10]);
const OK: usize = memory.data<u8>([43, 79, 75, 13, 10]); // +OK\r\n
const NIL: usize = memory.data<u8>([36, 45, 49, 13, 10]); // $-1\r\n
const ZERO: usize = memory.data<u8>([58, 48, 13, 10]); // :0\r\n
const ONE: usize = memory.data<u8>([58, 49, 13, 10]); // :1\r\n

/** +OK */
export function replyOk(out: ByteBuffer): void {
  out.writeBytes(OK, 5);
}

/** The null bulk string, which clients show as (nil). */
export function replyNil(out: ByteBuffer): void {
  out.writeBytes(NIL, 5);
}

/** A status reply: +text (text must not contain CR or LF). */
export function replyStatus(out: ByteBuffer, text: string): void {
  out.writeByte(43); // '+'
  out.writeString(text);
  out.writeBytes(CRLF, 2);
}

/**
 * An error reply. `message` starts with the error code, as Redis writes it:
 * "ERR syntax error", "OOM command not allowed ...".
 */
export function replyError(out: ByteBuffer, message: string): void {
  out.writeByte(45); // '-'
  out.writeString(message);
  out.writeBytes(CRLF, 2);
}

export function replyInteger(out: ByteBuffer, v: i64): void {
  if (v == 0) { out.writeBytes(ZERO, 4); return; }
  if (v == 1) { out.writeBytes(ONE, 4); return; }
  out.writeByte(58); // ':'
  out.writeSigned(v);
  out.writeBytes(CRLF, 2);
}

/** A bulk string of `len` bytes at `ptr` (binary-safe). */
export function replyBulk(out: ByteBuffer, ptr: usize, len: i32): void {
  // One reservation for header, payload and trailer: the common GET reply
  // then costs a single bounds check and one copy.
  out.writeByte(36); // '$'
  out.writeDecimal(<u64>len);
  const p = out.reserve(len + 4);
  store<u16>(p, 0x0a0d); // "\r\n"
  memory.copy(p + 2, ptr, <usize>len);
  store<u16>(p + 2 + <usize>len, 0x0a0d);
  out.commit(len + 4);
}

/** A bulk string from text (UTF-8). */
export function replyBulkString(out: ByteBuffer, s: string): void {
  out.writeByte(36);
  out.writeDecimal(<u64>String.UTF8.byteLength(s));
  out.writeBytes(CRLF, 2);
  out.writeString(s);
  out.writeBytes(CRLF, 2);
}

/** The header of an array of `n` replies; the n replies follow. */
export function replyArray(out: ByteBuffer, n: i32): void {
  out.writeByte(42); // '*'
  out.writeDecimal(<u64>n);
  out.writeBytes(CRLF, 2);
}
