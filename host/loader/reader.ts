/**
 * A bounds-checked cursor over a WebAssembly binary, shared by the component
 * reader (component.ts) and the core-module reader (core-module.ts). Plugin
 * files come from users: every read is checked and every loop is bounded by
 * the bytes left, so bad input ends in a WasmuxError, never a RangeError or a
 * hang. Offsets stay file-absolute so errors can name them.
 */
import { WasmuxError } from '../errors.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function at(offset: number): string {
  return `byte offset ${offset} (0x${offset.toString(16)})`;
}

export function malformed(message: string, offset: number, subject = 'component'): WasmuxError {
  return new WasmuxError('WASMUX_ERR_MALFORMED', `malformed WebAssembly ${subject}: ${message} at ${at(offset)}`);
}

/** A cursor over [pos, end) of the file; offsets stay file-absolute so errors can name them. */
export class Reader {
  pos: number;

  constructor(
    private readonly buf: Uint8Array,
    start: number,
    readonly end: number,
    /** What the bytes are, for messages ("component", "core module"). */
    readonly subject = 'component',
  ) {
    this.pos = start;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  fail(message: string, offset = this.pos): never {
    throw malformed(message, offset, this.subject);
  }

  u8(what: string): number {
    if (this.pos >= this.end) this.fail(`unexpected end of data while reading ${what}`);
    return this.buf[this.pos++];
  }

  u32(what: string): number {
    const start = this.pos;
    let value = 0;
    // Multiplication, not <<, so a 5-byte value cannot wrap into a small one.
    for (let i = 0; i < 5; i++) {
      const byte = this.u8(what);
      value += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) this.fail(`${what} does not fit in 32 bits`, start);
        return value;
      }
    }
    return this.fail(`${what} is a LEB128 number longer than 5 bytes`, start);
  }

  /** Skips a LEB128 number whose value wasmux never needs (u64 limits, s33 type indices). */
  skipLeb(maxBytes: number, what: string): void {
    const start = this.pos;
    for (let i = 0; i < maxBytes; i++) {
      if ((this.u8(what) & 0x80) === 0) return;
    }
    this.fail(`${what} is a LEB128 number longer than ${maxBytes} bytes`, start);
  }

  bytes(length: number, what: string): Uint8Array {
    if (length > this.remaining) {
      this.fail(`${what} needs ${length} bytes but only ${this.remaining} remain`);
    }
    const view = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return view;
  }

  /** The bytes from here to the end, without consuming them. */
  rest(): Uint8Array {
    return this.buf.subarray(this.pos, this.end);
  }

  name(what: string): string {
    const length = this.u32(`length of ${what}`);
    const start = this.pos;
    const raw = this.bytes(length, what);
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail(`${what} is not valid UTF-8`, start);
    }
  }

  /** A reader over the next `length` bytes, which this reader skips. */
  sub(length: number, what: string): Reader {
    const start = this.pos;
    this.bytes(length, what);
    return new Reader(this.buf, start, start + length, this.subject);
  }

  /** A vector length, refused up front when the items could not fit in the bytes left. */
  count(what: string, minItemBytes: number): number {
    const start = this.pos;
    const n = this.u32(`number of ${what}`);
    if (n * minItemBytes > this.remaining) {
      this.fail(`${n} ${what} cannot fit in the ${this.remaining} bytes left`, start);
    }
    return n;
  }

  /** Runs `read`; if it fails or declines (undefined), rewinds and returns undefined. */
  attempt<T>(read: () => T | undefined): T | undefined {
    const start = this.pos;
    let result: T | undefined;
    try {
      result = read();
    } catch (err) {
      if (!(err instanceof WasmuxError)) throw err;
    }
    if (result === undefined) this.pos = start;
    return result;
  }

  expectEnd(what: string): void {
    if (!this.atEnd()) this.fail(`${this.remaining} unexpected bytes after ${what}`);
  }
}
