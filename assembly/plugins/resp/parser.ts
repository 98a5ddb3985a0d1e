// Requests off the wire: RESP2 multibulk (what client libraries send) and
// inline commands (what a person types into telnet), parsed incrementally.
//
// A request may arrive in any number of reads, split anywhere. The parser
// keeps where it stopped (how many arguments are still due, the length of
// the bulk it is waiting for) so each read costs only its new bytes: a 1 MiB
// value arriving in 16 KiB pieces is not scanned 64 times.
//
// Multibulk arguments are not copied: each is an (offset, length) into the
// connection's input buffer, and the request's bytes stay there until the
// command has run (the handler then consumes them). Offsets, not pointers,
// because the buffer may move while a request is incomplete. Inline
// arguments may contain quotes and escapes, so they are unescaped into a
// scratch buffer instead.
//
// The limits and error messages are Redis 7's (networking.c), so clients
// see the same replies; a protocol error closes the connection once the
// error is sent, as in Redis.

import { ByteBuffer } from "../../sdk";
import { EMPTY_BUFFER, giveBuffer, takeBuffer } from "../../sdk/pool";
import { parseInteger, parsedInteger } from "./integers";

// Redis's PROTO_INLINE_MAX_SIZE: the longest inline request, and the longest
// a "*<count>" or "$<length>" line may be before its CR arrives.
const INLINE_MAX: i32 = 64 * 1024;
// Arguments per request. Redis takes up to 2^31; here one command must end
// well inside the CPU budget between two waits (200 ms by default, past
// which the host ends the instance), and 65,536 keys of a DEL or MGET take
// a few tens of milliseconds. More is answered as Redis answers a count
// past its own limit.
const MAX_ARGS: i64 = 64 * 1024;
const CR: u8 = 13;
const LF: u8 = 10;
// Argument slots an Args keeps between requests.
const KEEP_SPANS: i32 = 1024;

// Bulks at least this long are counted against the shared budget; smaller
// ones are not worth the bookkeeping.
const COUNTED_BULK: i32 = 16 * 1024;

/** What `next` found at the front of the input. */
export enum Parsed {
  /** Not a whole request yet: wait for more bytes. */
  Incomplete,
  /** A request: its arguments are in `args`; consume `length` bytes after running it. */
  Command,
  /** A request with no arguments (an empty line, `*0`): consume `length` bytes, nothing to run. */
  Nothing,
  /** Malformed: send writeError's reply, then close. */
  ProtocolError,
  /**
   * The request grew past client-query-buffer-limit, or the requests of all
   * connections together past maxmemory-clients: close without a reply (as
   * Redis does with a client over its limits). `tooBig` says which.
   */
  TooBig,
}

/**
 * What all connections together may hold in large bulks still arriving
 * (maxmemory-clients). One connection's limit does not bound the instance's
 * memory when many connections each send a large value at once; this does.
 */
export class RequestBudget {
  used: i64 = 0;
  constructor(readonly limit: i64) {}
}

/** The arguments of one request. Valid until the request's bytes are consumed. */
export class Args {
  count: i32 = 0;
  /** Where offsets count from: the input buffer's first byte, or the inline scratch. */
  base: usize = 0;
  // (offset, length) pairs of i32, in a block of `capacity` pairs, allocated
  // at the first argument: requests of up to KEEP_SPANS arguments then cost
  // no allocation.
  private spans: usize = 0;
  private capacity: i32 = 0;

  // @ts-ignore: decorator
  @inline ptr(i: i32): usize {
    return this.base + <usize>load<i32>(this.spans + (<usize>i << 3));
  }

  // @ts-ignore: decorator
  @inline len(i: i32): i32 {
    return load<i32>(this.spans + (<usize>i << 3), 4);
  }

  /** Is argument i `word`, ignoring case? `word` must be lowercase letters. */
  is(i: i32, word: string): bool {
    const n = this.len(i);
    if (n != word.length) return false;
    const p = this.ptr(i);
    for (let j = 0; j < n; j++) {
      if ((load<u8>(p + <usize>j) | 0x20) != <u8>word.charCodeAt(j)) return false;
    }
    return true;
  }

  /** Argument i as text (for messages and patterns; arguments themselves are bytes). */
  text(i: i32): string {
    return String.UTF8.decodeUnsafe(this.ptr(i), <usize>this.len(i));
  }

  clear(): void {
    this.count = 0;
    // A block that grew for a very wide request is not kept for the next.
    if (this.capacity > KEEP_SPANS) this.freeSpans();
  }

  push(offset: i32, length: i32): void {
    if (this.count == this.capacity) {
      // The first argument of the connection's first request allocates.
      this.capacity = this.capacity == 0 ? 8 : this.capacity << 1;
      this.spans = this.spans == 0 ? heap.alloc(<usize>this.capacity << 3) : heap.realloc(this.spans, <usize>this.capacity << 3);
    }
    const at = this.spans + (<usize>this.count << 3);
    store<i32>(at, offset);
    store<i32>(at, length, 4);
    this.count++;
  }

  /** Gives the spans' memory back. */
  freeSpans(): void {
    if (this.spans != 0) heap.free(this.spans);
    this.spans = 0;
    this.capacity = 0;
    this.count = 0;
  }
}

/**
 * A connection's parser. It is the arguments it parses into (one object per
 * connection rather than two: an idle connection's record is what it costs).
 */
export class RequestParser extends Args {
  /** The arguments of the request just parsed: this parser itself. */
  get args(): Args { return this; }
  /** Bytes of input the request just returned takes (valid after Command and Nothing). */
  length: i32 = 0;
  /** After TooBig: the limit that was passed. */
  tooBig: string = "";

  // Where parsing of the current request resumes, relative to the input's first byte.
  private pos: i32 = 0;
  // Multibulk arguments still due; -1 before the "*<count>" line is read.
  private due: i32 = -1;
  // Length of the bulk being waited for; -1 before its "$<length>" line is read.
  private bulkLen: i32 = -1;
  // Inline: where the search for the line's end resumes.
  private searched: i32 = 0;
  // An inline request's arguments, unquoted (a buffer on loan while one is parsed).
  private scratch: ByteBuffer = EMPTY_BUFFER;
  private error: string = "";
  private errorByte: i32 = -1;
  // Bytes of the current request counted in `budget`.
  private held: i64 = 0;

  /**
   * `maxBulk` is proto-max-bulk-len (longer bulks are a protocol error);
   * `maxRequest` is client-query-buffer-limit (a longer request closes the
   * connection); `budget` is shared by every connection's parser. Together
   * they keep clients from taking the instance's memory with requests.
   */
  constructor(private maxBulk: i32, private maxRequest: i32, private budget: RequestBudget) {
    super();
  }

  /** Parses the request at the front of `input`. */
  next(input: ByteBuffer): Parsed {
    if (input.length == 0) return Parsed.Incomplete;
    return input.at(0) == 42 /* '*' */ ? this.multibulk(input) : this.inline(input);
  }

  /** Readies for the next request; call after consuming `length` bytes. */
  reset(): void {
    this.budget.used -= this.held;
    this.held = 0;
    this.pos = 0;
    this.due = -1;
    this.bulkLen = -1;
    this.searched = 0;
    this.length = 0;
    if (this.scratch !== EMPTY_BUFFER) {
      giveBuffer(this.scratch);
      this.scratch = EMPTY_BUFFER;
    }
  }

  /** Gives back the memory the parser holds outside the collector's reach (the connection is gone). */
  release(): void {
    this.reset();
    this.freeSpans();
  }

  /** Writes the reply for the last ProtocolError (Redis sends it, then closes). */
  writeError(out: ByteBuffer): void {
    out.writeString("-ERR Protocol error: ");
    out.writeString(this.error);
    if (this.errorByte >= 0) {
      // Redis prints the offending byte itself; CR and LF become spaces so the
      // reply stays one line.
      const b = <u8>this.errorByte;
      out.writeByte(b == CR || b == LF ? 32 : b);
      out.writeString("'");
    }
    out.writeString("\r\n");
  }

  // *<count>\r\n then <count> times $<length>\r\n<bytes>\r\n
  private multibulk(input: ByteBuffer): Parsed {
    if (this.due < 0) {
      const cr = lineEnd(input, 0);
      if (cr < 0) return this.waitForLine(input, 0, "too big mbulk count string");
      if (!parseInteger(input.ptr + 1, cr - 1) || parsedInteger > MAX_ARGS) {
        return this.fail("invalid multibulk length");
      }
      this.pos = cr + 2;
      if (parsedInteger <= 0) {
        this.length = this.pos;
        return Parsed.Nothing;
      }
      this.due = <i32>parsedInteger;
      this.args.clear();
    }
    while (this.due > 0) {
      if (this.bulkLen < 0) {
        const cr = lineEnd(input, this.pos);
        if (cr < 0) return this.waitForLine(input, this.pos, "too big bulk count string");
        const first = input.at(this.pos);
        if (first != 36 /* '$' */) return this.fail("expected '$', got '", first);
        const p = input.ptr + <usize>this.pos;
        if (!parseInteger(p + 1, cr - this.pos - 1) || parsedInteger < 0 || parsedInteger > <i64>this.maxBulk) {
          return this.fail("invalid bulk length");
        }
        this.bulkLen = <i32>parsedInteger;
        this.pos = cr + 2;
        if (<i64>this.pos + <i64>this.bulkLen > <i64>this.maxRequest) {
          this.tooBig = "client-query-buffer-limit";
          return Parsed.TooBig;
        }
        if (this.bulkLen >= COUNTED_BULK) {
          if (this.budget.used + <i64>this.bulkLen > this.budget.limit) {
            this.tooBig = "maxmemory-clients";
            return Parsed.TooBig;
          }
          this.budget.used += <i64>this.bulkLen;
          this.held += <i64>this.bulkLen;
        }
      }
      // The bulk and its CRLF (which, as in Redis, is skipped unchecked).
      if (input.length - this.pos < this.bulkLen + 2) return Parsed.Incomplete;
      this.args.push(this.pos, this.bulkLen);
      this.pos += this.bulkLen + 2;
      this.bulkLen = -1;
      this.due--;
    }
    this.args.base = input.ptr;
    this.length = this.pos;
    return Parsed.Command;
  }

  // One line, split into arguments the way redis-cli and Redis do it
  // (sdssplitargs): blanks separate, "double quotes" take \n \r \t \b \a \xHH
  // and \<char> escapes, 'single quotes' take \'. A line ends at LF, with or
  // without CR before it.
  private inline(input: ByteBuffer): Parsed {
    const lf = input.indexOf(LF, this.searched);
    if (lf < 0) {
      this.searched = input.length;
      if (input.length > INLINE_MAX) return this.fail("too big inline request");
      return Parsed.Incomplete;
    }
    let end = lf;
    if (end > 0 && input.at(end - 1) == CR) end--;
    // The line is a C string to Redis: a NUL byte ends it.
    for (let i = 0; i < end; i++) {
      if (input.at(i) == 0) { end = i; break; }
    }
    this.length = lf + 1;
    if (!this.split(input.ptr, end)) return this.fail("unbalanced quotes in request");
    return this.args.count == 0 ? Parsed.Nothing : Parsed.Command;
  }

  private split(line: usize, n: i32): bool {
    if (this.scratch === EMPTY_BUFFER) this.scratch = takeBuffer();
    const out = this.scratch;
    out.clear();
    this.args.clear();
    let p = 0;
    while (true) {
      while (p < n && isSpace(load<u8>(line + <usize>p))) p++;
      if (p >= n) break;
      const start = out.length;
      let inDouble = false;
      let inSingle = false;
      let done = false;
      while (!done) {
        // Past the end reads as NUL, as in the C original.
        const c: u8 = p < n ? load<u8>(line + <usize>p) : 0;
        const next: u8 = p + 1 < n ? load<u8>(line + <usize>p + 1) : 0;
        if (inDouble) {
          if (c == 92 /* \ */ && next == 120 /* x */ && p + 3 < n &&
              isHex(load<u8>(line + <usize>p + 2)) && isHex(load<u8>(line + <usize>p + 3))) {
            out.writeByte(<u8>(hexValue(load<u8>(line + <usize>p + 2)) * 16 + hexValue(load<u8>(line + <usize>p + 3))));
            p += 3;
          } else if (c == 92 && next != 0) {
            p++;
            out.writeByte(unescape(next));
          } else if (c == 34 /* " */) {
            if (next != 0 && !isSpace(next)) return false; // "a"b
            done = true;
          } else if (c == 0) {
            return false; // unterminated
          } else {
            out.writeByte(c);
          }
        } else if (inSingle) {
          if (c == 92 && next == 39 /* ' */) {
            p++;
            out.writeByte(39);
          } else if (c == 39) {
            if (next != 0 && !isSpace(next)) return false;
            done = true;
          } else if (c == 0) {
            return false;
          } else {
            out.writeByte(c);
          }
        } else if (c == 32 || c == LF || c == CR || c == 9 || c == 0) {
          done = true;
        } else if (c == 34) {
          inDouble = true;
        } else if (c == 39) {
          inSingle = true;
        } else {
          out.writeByte(c);
        }
        if (p < n) p++;
      }
      this.args.push(start, out.length - start);
    }
    this.args.base = out.ptr;
    return true;
  }

  // A "*"/"$" line whose CR has not arrived: wait, unless it is already
  // longer than any such line can be.
  private waitForLine(input: ByteBuffer, from: i32, tooBig: string): Parsed {
    return input.length - from > INLINE_MAX ? this.fail(tooBig) : Parsed.Incomplete;
  }

  // `byte`: the offending byte, which the message ends with (then a quote).
  private fail(message: string, byte: i32 = -1): Parsed {
    this.error = message;
    this.errorByte = byte;
    return Parsed.ProtocolError;
  }
}

// Index of the CR ending the line that starts at `from`, once the byte after
// it has arrived too (Redis waits for it), else -1.
function lineEnd(input: ByteBuffer, from: i32): i32 {
  const cr = input.indexOf(CR, from);
  return cr >= 0 && cr + 1 < input.length ? cr : -1;
}

// C's isspace.
function isSpace(c: u8): bool {
  return c == 32 || (c >= 9 && c <= 13);
}

function isHex(c: u8): bool {
  return (c >= 48 && c <= 57) || ((c | 0x20) >= 97 && (c | 0x20) <= 102);
}

function hexValue(c: u8): i32 {
  return c <= 57 ? <i32>c - 48 : <i32>(c | 0x20) - 87;
}

function unescape(c: u8): u8 {
  switch (c) {
    case 110: return LF; // \n
    case 114: return CR; // \r
    case 116: return 9; // \t
    case 98: return 8; // \b
    case 97: return 7; // \a
    default: return c;
  }
}
