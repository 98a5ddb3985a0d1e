/**
 * The trace format (docs/trace-format.md): what `wasmux run --record` writes
 * and `wasmux replay` reads. One table, RECORD_KINDS, says every record's
 * fields; the recorder writes them by hand (it is on the hot path), the
 * reader decodes them from the table.
 *
 * File: MAGIC (8 bytes) | version u16 LE | reserved u16 (0) | header length
 * u32 LE | header (JSON, UTF-8) | records... The last record is an `end`,
 * unless the recording thread was terminated first.
 *
 * A record: its kind (one byte), then its fields in table order:
 *   u     unsigned LEB128 varint (up to 2^53)
 *   s     signed: zigzag, then as u (a result: a handle, a count, or -1-code)
 *   addr  family byte (4 or 6), then 4 bytes (IPv4) or 8 u16 LE groups (IPv6), port u16 LE
 *   addr? an addr, present only when the record's result is >= 0
 *   u64   8 bytes LE;  f64: 8 bytes LE (IEEE 754)
 *   text  u byte length, then UTF-8
 *   events  `result` times: token low u, token high u, readiness u
 *   bytes   `result` raw bytes (none when result <= 0)
 *
 * A recv that the host refused before reading (bad handle, max 0, would-block
 * from the readiness cache) is a `recv-refused` record: the glue lent the
 * guest no buffer for it, and replay must not either. A `recv-started`
 * record is written only at the end, when the instance ended between lending
 * the buffer and reading into it (the guest's cabi_realloc trapped).
 */
import { SocketAddress } from '../backends/address.js';
import { WasmuxError } from '../errors.js';
import type { ExitReason } from '../sandbox/traps.js';

export const TRACE_MAGIC = Buffer.from('WASMUXTR', 'latin1');
/**
 * Bumped for any change a version-1 reader would misread (a new kind, a new
 * field). A reader refuses versions it does not know, newer and older.
 */
export const TRACE_VERSION = 1;
/** magic, version, reserved, header length. */
export const PREFIX_BYTES = 16;

/** What the header says (JSON). */
export interface TraceHeader {
  /** The plugin as recorded: its path (absolute, when known), name, and the component's sha256. */
  plugin: { path: string | null; name: string; sha256: string };
  config: string;
  /** The addresses run() was given (port 0 resolved), as host:port text. */
  listen: string[];
  instance: number;
  /** 0 for an instance's first thread; n for its n-th restart. */
  incarnation: number;
  /** What the guest can read, and what decides what it is told: memory and table caps (the module is capped the same way in replay). */
  limits: {
    maxMemoryMiB: number;
    maxConnections: number;
    maxEventsPerWait: number;
    maxRecvBytes: number;
    maxTableElements: number;
    /** The thread's V8 heap (replay's thread gets the same: a guest that exhausted it does again). */
    maxHeapMiB?: number;
    /** The watchdog's budget (replay gives a guest that runs on past the trace's end this long, at least). */
    cpuBudgetMs?: number;
    /** The plugin-defined metrics' series cap (replay's metrics answer by it; absent: the default). */
    metricSeries?: number;
  };
  /** For information: the backend the run used and when it started (ISO 8601). */
  backend: string;
  startedAt: string;
}

export type FieldType = 'u' | 's' | 'addr' | 'addr?' | 'u64' | 'f64' | 'text' | 'events' | 'bytes';
/** arg: what the guest asked (replay checks it); ret: what the host answered (replay returns it). */
export type FieldRole = 'arg' | 'ret';

export interface KindSpec {
  readonly name: string;
  /** The guest's call it records, as the divergence message names it. */
  readonly call: string;
  readonly fields: readonly (readonly [name: string, type: FieldType, role: FieldRole])[];
}

export const K_REGISTER = 1;
export const K_REREGISTER = 2;
export const K_DEREGISTER = 3;
export const K_WAIT = 4;
export const K_LISTEN = 5;
export const K_ACCEPT = 6;
export const K_CONNECT = 7;
export const K_RECV = 8;
export const K_SEND = 9;
export const K_SHUTDOWN = 10;
export const K_CLOSE = 11;
export const K_ADDRESS = 12;
export const K_ADMIT = 13;
export const K_GUEST_LINE = 14;
export const K_HOST_LINE = 15;
export const K_MONOTONIC = 16;
export const K_WALL = 17;
export const K_END = 18;
export const K_RECV_NONE = 19;
export const K_RECV_STARTED = 20;

const INTEREST = [
  ['handle', 'u', 'arg'],
  ['tokenLo', 'u', 'arg'],
  ['tokenHi', 'u', 'arg'],
  ['interest', 'u', 'arg'],
  ['result', 's', 'ret'],
] as const;

/** Every record kind, by its byte. */
export const RECORD_KINDS: Readonly<Record<number, KindSpec>> = {
  [K_REGISTER]: { name: 'register', call: 'poll.register', fields: INTEREST },
  [K_REREGISTER]: { name: 'reregister', call: 'poll.reregister', fields: INTEREST },
  [K_DEREGISTER]: {
    name: 'deregister',
    call: 'poll.deregister',
    fields: [
      ['handle', 'u', 'arg'],
      ['result', 's', 'ret'],
    ],
  },
  [K_WAIT]: {
    name: 'wait',
    call: 'poll.wait',
    fields: [
      ['max', 'u', 'arg'],
      ['timeoutMs', 's', 'arg'],
      ['result', 's', 'ret'],
      ['events', 'events', 'ret'],
    ],
  },
  [K_LISTEN]: {
    name: 'listen',
    call: 'tcp.listen',
    fields: [
      ['address', 'addr', 'arg'],
      ['backlog', 'u', 'arg'],
      ['result', 's', 'ret'],
    ],
  },
  [K_ACCEPT]: {
    name: 'accept',
    call: 'tcp.accept',
    fields: [
      ['handle', 'u', 'arg'],
      ['result', 's', 'ret'],
      ['peer', 'addr?', 'ret'],
    ],
  },
  [K_CONNECT]: {
    name: 'connect',
    call: 'tcp.connect',
    fields: [
      ['address', 'addr', 'arg'],
      ['result', 's', 'ret'],
    ],
  },
  [K_RECV]: {
    name: 'recv',
    call: 'tcp.recv',
    fields: [
      ['handle', 'u', 'arg'],
      ['max', 'u', 'arg'],
      ['result', 's', 'ret'],
      ['bytes', 'bytes', 'ret'],
    ],
  },
  [K_RECV_NONE]: {
    name: 'recv-refused',
    call: 'tcp.recv',
    fields: [
      ['handle', 'u', 'arg'],
      ['max', 'u', 'arg'],
      ['result', 's', 'ret'],
    ],
  },
  [K_RECV_STARTED]: {
    name: 'recv-started',
    call: 'tcp.recv',
    fields: [
      ['handle', 'u', 'arg'],
      ['max', 'u', 'arg'],
    ],
  },
  [K_SEND]: {
    name: 'send',
    call: 'tcp.send',
    fields: [
      ['handle', 'u', 'arg'],
      ['length', 'u', 'arg'],
      ['result', 's', 'ret'],
    ],
  },
  [K_SHUTDOWN]: {
    name: 'shutdown',
    call: 'tcp.shutdown',
    fields: [
      ['handle', 'u', 'arg'],
      ['how', 'u', 'arg'],
      ['result', 's', 'ret'],
    ],
  },
  [K_CLOSE]: {
    name: 'close',
    call: 'tcp.close',
    fields: [
      ['handle', 'u', 'arg'],
      ['result', 's', 'ret'],
    ],
  },
  [K_ADDRESS]: {
    name: 'address',
    call: 'tcp.local-address/peer-address',
    fields: [
      ['handle', 'u', 'arg'],
      ['ofPeer', 'u', 'arg'],
      ['result', 's', 'ret'],
      ['address', 'addr?', 'ret'],
    ],
  },
  [K_ADMIT]: { name: 'admit', call: 'log.log (admitted?)', fields: [['admitted', 'u', 'ret']] },
  [K_GUEST_LINE]: {
    name: 'guest-line',
    call: 'log.log',
    fields: [
      ['level', 'u', 'arg'],
      ['text', 'text', 'arg'],
    ],
  },
  [K_HOST_LINE]: {
    name: 'host-line',
    call: '(a line the host wrote)',
    fields: [
      ['level', 'u', 'ret'],
      ['text', 'text', 'ret'],
    ],
  },
  [K_MONOTONIC]: { name: 'monotonic-now', call: 'monotonic-clock.now', fields: [['ns', 'u64', 'ret']] },
  [K_WALL]: { name: 'wall-now', call: 'wall-clock.now', fields: [['ms', 'f64', 'ret']] },
  [K_END]: {
    name: 'end',
    call: '(the instance ended)',
    fields: [
      ['reason', 'u', 'ret'],
      ['hasMessage', 'u', 'ret'],
      ['message', 'text', 'ret'],
    ],
  },
};

/** An end record's reason, by its number. */
export const END_REASONS = ['returned', 'failed', 'stopped', 'trapped', 'killed', 'crashed', 'truncated'] as const;
export type EndReason = ExitReason | 'truncated';

/** The longest end message kept (a longer one is cut, the same way when replay compares). */
export const END_MESSAGE_MAX = 2000;

export function endMessageText(message: string | null): string {
  if (message === null) return '';
  return message.length > END_MESSAGE_MAX ? `${message.slice(0, END_MESSAGE_MAX)}…` : message;
}

/** The end record: how the instance ended (its message cut at END_MESSAGE_MAX). */
export function encodeEnd(reason: EndReason, message: string | null): Buffer {
  const text = Buffer.from(endMessageText(message), 'utf8');
  const head: number[] = [K_END, END_REASONS.indexOf(reason), message === null ? 0 : 1];
  // The text's length as a varint.
  for (let n = text.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      head.push(n);
      break;
    }
    head.push((n % 128) | 0x80);
  }
  return Buffer.concat([Buffer.from(head), text]);
}

/** A decoded field. */
export type FieldValue = number | bigint | string | SocketAddress | Uint8Array | Uint32Array | null;

export interface DecodedRecord {
  readonly kind: number;
  readonly spec: KindSpec;
  /** Byte offset of the record in the file. */
  readonly at: number;
  readonly f: Record<string, FieldValue>;
}

export function traceError(message: string): WasmuxError {
  return new WasmuxError('WASMUX_ERR_TRACE', message);
}

/** The file's first bytes: magic, version, the header. */
export function encodePrefix(header: TraceHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(PREFIX_BYTES + json.length);
  TRACE_MAGIC.copy(out, 0);
  out.writeUInt16LE(TRACE_VERSION, 8);
  out.writeUInt16LE(0, 10);
  out.writeUInt32LE(json.length, 12);
  json.copy(out, PREFIX_BYTES);
  return out;
}

/** Reads a trace's records in order (cold path: replay and tools). */
export class TraceReader {
  readonly header: TraceHeader;
  pos: number;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    readonly file: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < PREFIX_BYTES || !TRACE_MAGIC.equals(bytes.subarray(0, 8))) {
      throw traceError(`${file} is not a wasmux trace (no WASMUXTR magic at its start)`);
    }
    const version = this.view.getUint16(8, true);
    if (version !== TRACE_VERSION) {
      throw traceError(`${file} is a version ${version} trace; this wasmux reads version ${TRACE_VERSION} only`);
    }
    const length = this.view.getUint32(12, true);
    if (PREFIX_BYTES + length > bytes.length) throw traceError(`${file} is truncated inside its header`);
    try {
      this.header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + PREFIX_BYTES, length).toString('utf8')) as TraceHeader;
    } catch (e) {
      throw traceError(`${file}: its header is not valid JSON (${(e as Error).message})`);
    }
    const h = this.header;
    if (typeof h?.plugin?.sha256 !== 'string' || !Array.isArray(h.listen) || typeof h.limits?.maxEventsPerWait !== 'number') {
      throw traceError(`${file}: its header lacks the plugin, listen or limits fields`);
    }
    this.pos = PREFIX_BYTES + length;
  }

  /** No more bytes: the recording ended without an end record (its thread was terminated). */
  get atEnd(): boolean {
    return this.pos >= this.bytes.length;
  }

  /** The next record's kind, without consuming it (-1 at the end of the file). */
  peekKind(): number {
    return this.atEnd ? -1 : this.bytes[this.pos]!;
  }

  private need(n: number): void {
    if (this.pos + n > this.bytes.length) throw traceError(`${this.file} is truncated inside a record (at byte ${this.pos})`);
  }

  private u(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      this.need(1);
      const b = this.bytes[this.pos++]!;
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 128;
    }
    throw traceError(`${this.file}: a varint longer than 8 bytes at byte ${this.pos}`);
  }

  private s(): number {
    const z = this.u();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  private addr(): SocketAddress {
    this.need(1);
    const family = this.bytes[this.pos++];
    const a = new SocketAddress();
    if (family === 4) {
      this.need(6);
      for (let i = 0; i < 4; i++) a.groups[i] = this.bytes[this.pos++]!;
    } else if (family === 6) {
      this.need(18);
      a.v6 = true;
      for (let i = 0; i < 8; i++, this.pos += 2) a.groups[i] = this.view.getUint16(this.pos, true);
    } else {
      throw traceError(`${this.file}: an address of family ${family} at byte ${this.pos - 1}`);
    }
    a.port = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return a;
  }

  private raw(n: number): Uint8Array {
    this.need(n);
    const b = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** Decodes the next record. */
  next(): DecodedRecord {
    const at = this.pos;
    this.need(1);
    const kind = this.bytes[this.pos++]!;
    const spec = RECORD_KINDS[kind];
    if (spec === undefined) throw traceError(`${this.file}: unknown record kind ${kind} at byte ${at}`);
    const f: Record<string, FieldValue> = {};
    for (const [name, type] of spec.fields) {
      switch (type) {
        case 'u':
          f[name] = this.u();
          break;
        case 's':
          f[name] = this.s();
          break;
        case 'addr':
          f[name] = this.addr();
          break;
        case 'addr?':
          f[name] = (f.result as number) >= 0 ? this.addr() : null;
          break;
        case 'u64':
          this.need(8);
          f[name] = this.view.getBigUint64(this.pos, true);
          this.pos += 8;
          break;
        case 'f64':
          this.need(8);
          f[name] = this.view.getFloat64(this.pos, true);
          this.pos += 8;
          break;
        case 'text':
          f[name] = Buffer.from(this.raw(this.u())).toString('utf8');
          break;
        case 'events': {
          const n = Math.max(0, f.result as number);
          const ev = new Uint32Array(3 * n);
          for (let i = 0; i < 3 * n; i++) ev[i] = this.u();
          f[name] = ev;
          break;
        }
        case 'bytes':
          f[name] = this.raw(Math.max(0, f.result as number));
          break;
      }
    }
    return { kind, spec, at, f };
  }
}

/** A record's fields of one role as `name value` text, for messages. */
export function describeFields(rec: DecodedRecord, role: FieldRole): string {
  return rec.spec.fields
    .filter(([, , r]) => r === role)
    .map(([name]) => `${name} ${showValue(rec.f[name]!)}`)
    .join(', ');
}

export function showValue(v: FieldValue): string {
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  if (v instanceof Uint32Array) return `${v.length / 3} events`;
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  return String(v);
}
