// sdk-units: unit tests of the SDK's byte buffers (assembly/sdk/buffer.ts,
// ByteBuffer) and their pool (assembly/sdk/pool.ts), run inside a real
// instance: the same compiler options, allocator and abort hook as every
// plugin.
//
// With an empty --config, run() runs every test and logs "ok <name>" for
// each that passed and "FAIL <name>: <what>" (level error) for each check
// that did not, then returns null when all passed or "<n> failed". With
// --config trap:<case> it misuses a buffer in one way the buffer asserts
// against (consume, truncate, commit past the end, at out of range), which
// must trap with the assert's message.
//
// Used by test/sdk/buffer.test.ts.
import { Context, error, info, serve } from "../../sdk";
import { ByteBuffer, bufferGrowth } from "../../sdk/buffer";
import { EMPTY_BUFFER, giveBuffer, takeBuffer } from "../../sdk/pool";
export * from "../../sdk/entry";

let current = "";
let failed = 0;

function check(ok: bool, what: string): void {
  if (!ok) {
    failed++;
    error("FAIL " + current + ": " + what);
  }
}

function eq(actual: i64, expected: i64, what: string): void {
  check(actual == expected, what + ": " + actual.toString() + ", expected " + expected.toString());
}

function eqText(actual: string, expected: string, what: string): void {
  check(actual == expected, what + ": \"" + actual + "\", expected \"" + expected + "\"");
}

function run(name: string, test: () => void): void {
  current = name;
  const before = failed;
  test();
  if (failed == before) info("ok " + name);
}

// ---- the tests ------------------------------------------------------------------------

function lazyAllocation(): void {
  const g = bufferGrowth;
  const b = new ByteBuffer(0);
  eq(b.capacity, 0, "capacity");
  eq(b.length, 0, "length");
  eq(b.spare, 0, "spare");
  eq(<i64>(bufferGrowth - g), 0, "bytes allocated by the constructor");
  eq(b.growthFor(1), 256, "growthFor(1) of an empty buffer");
  b.writeByte(65);
  eq(b.capacity, 256, "capacity after the first byte");
  eq(<i64>(bufferGrowth - g), 256, "bytes allocated by the first write");
  eqText(b.toString(), "A", "content");
  b.release();
}

function initialCapacity(): void {
  const small = new ByteBuffer(1);
  eq(small.capacity, 256, "a capacity below the minimum");
  const exact = new ByteBuffer(300);
  eq(exact.capacity, 300, "a capacity above the minimum");
  const dflt = new ByteBuffer();
  eq(dflt.capacity, 4096, "the default capacity");
  eq(dflt.spare, 4096, "spare of a new buffer");
  small.release();
  exact.release();
  dflt.release();
}

function append(): void {
  const b = new ByteBuffer(0);
  const src = new ByteBuffer(0);
  src.writeString("raw");
  b.writeBytes(src.ptr, 3);
  b.writeByte(32);
  b.writeString("h\u00e9 ");
  b.writeDecimal(0);
  b.writeByte(32);
  b.writeDecimal(u64.MAX_VALUE);
  b.writeByte(32);
  b.writeSigned(-1);
  b.writeByte(32);
  b.writeSigned(i64.MIN_VALUE);
  b.writeByte(32);
  b.writeSigned(42);
  eqText(b.toString(), "raw h\u00e9 0 18446744073709551615 -1 -9223372036854775808 42", "appended text");
  eq(b.length, 57, "length (UTF-8 bytes)");
  src.release();
  b.release();
}

function consume(): void {
  const b = new ByteBuffer(0);
  b.writeString("hello world");
  const base = b.ptr;
  b.consume(6);
  eqText(b.toString(), "world", "after consuming 6");
  eq(b.length, 5, "length");
  eq(<i64>(b.ptr - base), 6, "ptr moved by 6");
  eq(b.at(0), 119, "at(0) is 'w'");
  b.consume(0);
  eq(b.length, 5, "consume(0) changes nothing");
  b.consume(5);
  eq(b.length, 0, "all consumed");
  eq(<i64>(b.ptr - base), 0, "consuming everything rewinds to the start");
  eq(b.spare, 256, "the whole capacity is free again");
  b.writeString("x");
  eqText(b.toString(), "x", "written again at the start");
  b.release();
}

function truncate(): void {
  const b = new ByteBuffer(0);
  b.writeString("abcdef");
  b.consume(1);
  b.truncate(3);
  eqText(b.toString(), "bcd", "kept the first 3 unread bytes");
  b.writeString("X");
  eqText(b.toString(), "bcdX", "written after the kept bytes");
  b.truncate(4);
  eqText(b.toString(), "bcdX", "truncate(length) keeps everything");
  b.truncate(0);
  eq(b.length, 0, "truncate(0) empties");
  b.release();
}

function reserveCommit(): void {
  const b = new ByteBuffer(0);
  const p = b.reserve(10);
  eq(b.capacity, 256, "reserve allocated");
  store<u8>(p, 97);
  store<u8>(p + 1, 98);
  store<u8>(p + 2, 99);
  b.commit(3);
  eqText(b.toString(), "abc", "committed bytes");
  eq(b.spare, 253, "spare after commit");
  eq(<i64>(b.reserve(0) - b.ptr), 3, "the next reserve starts after the committed bytes");
  b.commit(0);
  eq(b.length, 3, "commit(0)");
  b.release();
}

function pattern(i: i32): u8 {
  return <u8>((i * 7 + 3) & 0xff);
}

function writePattern(b: ByteBuffer, from: i32, n: i32): void {
  for (let i = from; i < from + n; i++) b.writeByte(pattern(i));
}

function holdsPattern(b: ByteBuffer, from: i32, n: i32): bool {
  if (b.length != n) return false;
  for (let i = 0; i < n; i++) if (b.at(i) != pattern(from + i)) return false;
  return true;
}

function growth(): void {
  const b = new ByteBuffer(0);
  const g = bufferGrowth;
  writePattern(b, 0, 256);
  eq(b.capacity, 256, "256 bytes fit the first block");
  eq(b.spare, 0, "full");
  eq(b.growthFor(1), 512, "growthFor(1) when full");
  writePattern(b, 256, 1);
  eq(b.capacity, 512, "one more byte doubles");
  eq(b.growthFor(1000), 2048, "growthFor(1000)");
  const p = b.reserve(1000);
  eq(b.capacity, 2048, "reserve(1000) grew to what growthFor said");
  eq(<i64>(p - b.ptr), 257, "reserve returns the end of the unread bytes");
  check(holdsPattern(b, 0, 257), "contents kept through growth");
  eq(<i64>(bufferGrowth - g), 256 + 512 + 2048, "bufferGrowth counts every block allocated");
  eq(b.growthFor(1), 0, "growthFor when there is room");
  b.release();
}

function compaction(): void {
  const b = new ByteBuffer(0);
  writePattern(b, 0, 200);
  const base = b.ptr;
  b.consume(150);
  const g = bufferGrowth;
  eq(b.spare, 56, "spare after the unread bytes");
  eq(b.growthFor(100), 0, "room once the consumed bytes are reused: no growth");
  b.reserve(100);
  eq(b.capacity, 256, "capacity unchanged");
  eq(<i64>(bufferGrowth - g), 0, "nothing allocated");
  eq(<i64>(b.ptr - base), 0, "unread bytes moved to the front");
  check(holdsPattern(b, 150, 50), "unread bytes kept");
  eq(b.spare, 206, "spare after moving");
  b.release();
}

function growthWithOffset(): void {
  const b = new ByteBuffer(0);
  writePattern(b, 0, 200);
  b.consume(100);
  eq(b.growthFor(200), 512, "growthFor(200) with 100 unread bytes not at the front");
  b.reserve(200);
  eq(b.capacity, 512, "grew");
  check(holdsPattern(b, 100, 100), "unread bytes copied into the new block");
  eq(b.spare, 412, "spare after the copy");
  writePattern(b, 200, 200);
  check(holdsPattern(b, 100, 300), "appending after the copy");
  b.release();
}

function release(): void {
  const b = new ByteBuffer(1000);
  b.writeString("data");
  b.release();
  eq(b.capacity, 0, "capacity after release");
  eq(b.length, 0, "length after release");
  eq(b.spare, 0, "spare after release");
  b.release(); // twice is harmless
  b.writeString("again");
  eq(b.capacity, 256, "allocates afresh when written");
  eqText(b.toString(), "again", "content after release");
  b.release();
}

function search(): void {
  const b = new ByteBuffer(0);
  b.writeString("ab\r\ncd\r\n");
  eq(b.indexOf(99), 4, "indexOf 'c'");
  eq(b.indexOf(97, 1), -1, "indexOf 'a' from 1");
  eq(b.indexOfCRLF(), 2, "first CRLF");
  eq(b.indexOfCRLF(3), 6, "CRLF from 3");
  eq(b.indexOfCRLF(7), -1, "CRLF from the last byte");
  eqText(b.toString(4, 2), "cd", "toString(from, len)");
  eqText(b.toString(4), "cd\r\n", "toString(from)");
  b.consume(4);
  eq(b.indexOfCRLF(), 2, "indices count from the first unread byte");
  eq(b.indexOf(99), 0, "indexOf after consume");
  const lone = new ByteBuffer(0);
  lone.writeString("x\r");
  eq(lone.indexOfCRLF(), -1, "a CR at the end is not a CRLF");
  lone.clear();
  eq(lone.indexOf(120), -1, "nothing in an empty buffer");
  b.release();
  lone.release();
}

function clear(): void {
  const b = new ByteBuffer(0);
  writePattern(b, 0, 300);
  const cap = b.capacity;
  b.clear();
  eq(b.length, 0, "empty");
  eq(b.capacity, cap, "clear keeps the memory");
  eq(b.spare, cap, "all of it free");
  b.release();
}

function pool(): void {
  eq(EMPTY_BUFFER.capacity, 0, "EMPTY_BUFFER holds no memory");
  eq(EMPTY_BUFFER.length, 0, "EMPTY_BUFFER is empty");
  const a = takeBuffer();
  eq(a.capacity, 0, "a new pool buffer holds no memory until written");
  a.writeString("some bytes");
  giveBuffer(a);
  const b = takeBuffer();
  check(a === b, "the buffer given back is the one taken next");
  eq(b.length, 0, "given back empty");
  eq(b.capacity, 256, "its memory kept (small)");
  writePattern(b, 0, 20_000);
  eq(b.capacity, 32768, "grown past 16 KiB");
  giveBuffer(b);
  const c = takeBuffer();
  check(c === b, "taken again");
  eq(c.capacity, 0, "a buffer above 16 KiB comes back without its memory");
  giveBuffer(c);
}

// ---- misuse that must trap -------------------------------------------------------------------

function trap(which: string): string | null {
  const b = new ByteBuffer(0);
  b.writeString("ab");
  if (which == "consume") b.consume(3);
  else if (which == "consume-negative") b.consume(-1);
  else if (which == "truncate") b.truncate(3);
  else if (which == "commit") b.commit(255);
  else if (which == "at") b.at(2);
  else return "no trap case \"" + which + "\"";
  return "misused the buffer (" + which + ") without a trap";
}

serve((ctx: Context): string | null => {
  if (ctx.config.startsWith("trap:")) return trap(ctx.config.substring(5));
  if (ctx.config.length > 0) return "unknown config \"" + ctx.config + "\"";
  run("lazy allocation", lazyAllocation);
  run("initial capacity", initialCapacity);
  run("append", append);
  run("consume", consume);
  run("truncate", truncate);
  run("reserve and commit", reserveCommit);
  run("growth", growth);
  run("compaction", compaction);
  run("growth with unread bytes not at the front", growthWithOffset);
  run("release", release);
  run("search", search);
  run("clear", clear);
  run("pool", pool);
  return failed == 0 ? null : failed.toString() + " failed";
});
