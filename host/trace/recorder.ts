/**
 * Recording (`wasmux run --record`): a GuestHost that forwards every call
 * of the glue to the instance's real host (sandbox/instance-host.ts) and
 * appends what the guest asked and what the host answered to the trace
 * (format.ts, docs/trace-format.md). It exists only when recording: an
 * unrecorded instance's glue calls InstanceHost directly.
 *
 * The hot path allocates nothing but, for a recv of more than SMALL_COPY
 * bytes, the view its bytes are copied through: records go into one preallocated chunk
 * that is written to the file (fs.writeSync, from the instance's own thread)
 * when full, before a wait at most every FLUSH_EVERY_MS, and at the end.
 * Received bytes are copied from guest memory straight into the chunk
 * (a recv larger than the chunk is written from guest memory directly).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { SocketAddress } from '../backends/address.js';
import { ErrorCode, LEVEL_NAMES } from '../generated/contract.js';
import { fail } from '../backends/backend.js';
import type { GuestClock, GuestHost } from '../sandbox/guest-host.js';
import type { InstanceHost, LogLevel } from '../sandbox/instance-host.js';
import type { ExitReason } from '../sandbox/traps.js';
import type { GuestMemory } from '../wit/guest-memory.js';
import {
  K_ACCEPT,
  K_ADDRESS,
  K_ADMIT,
  K_CLOSE,
  K_CONNECT,
  K_DEREGISTER,
  K_GUEST_LINE,
  K_HOST_LINE,
  K_LISTEN,
  K_MONOTONIC,
  K_RECV,
  K_REGISTER,
  K_REREGISTER,
  K_SEND,
  K_SHUTDOWN,
  K_WAIT,
  K_WALL,
  K_RECV_NONE,
  K_RECV_STARTED,
  type EndReason,
  encodeEnd,
  encodePrefix,
  type TraceHeader,
} from './format.js';

/** The chunk: records are written to the file this many bytes at a time (at most). */
export const CHUNK_BYTES = 64 * 1024;
/** Before a wait, what is buffered is written if the last write is this old: a terminated thread loses at most this much time of trace. */
export const FLUSH_EVERY_MS = 200;
/** Received bytes up to this many are copied byte by byte; more, through one subarray view (a small object) and set(). */
const SMALL_COPY = 128;
/** Room kept below the size bound for the end record. */
const END_RESERVE = 8 * 1024;
/** The largest fixed part of a record (kind + up to six varints + an address). */
const SMALL = 64;

/** The cells a recording shares with the supervisor (TraceWriter.shared). */
export const TAIL_POS = 0;
export const TAIL_FD = 1;

/**
 * The memory a recording shares with the supervisor: its chunk, and two
 * words, the end of the last whole record in the chunk and the file's
 * descriptor (-1 before it is open and once the writer has ended the trace). A thread terminated outright
 * (the watchdog's kill, a stop it ignored, its heap exhausted) writes
 * nothing more; the supervisor then writes the chunk's whole records and
 * the end record (its own account of the end) for it: finishTrace().
 */
export interface TraceTail {
  readonly chunk: SharedArrayBuffer;
  readonly cells: SharedArrayBuffer;
}

export function newTraceTail(): TraceTail {
  const cells = new SharedArrayBuffer(8);
  new Int32Array(cells)[TAIL_FD] = -1;
  return { chunk: new SharedArrayBuffer(CHUNK_BYTES), cells };
}

/**
 * After the thread is gone: the records it had not written, and the end, if
 * it did not write them itself. The file is opened again (Node closes the
 * descriptors a worker opened when it is terminated) and appended to.
 */
export function finishTrace(tail: TraceTail, file: string, reason: EndReason, message: string | null): void {
  const cells = new Int32Array(tail.cells);
  if (cells[TAIL_FD]! < 0) return;
  cells[TAIL_FD] = -1;
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, new Uint8Array(tail.chunk, 0, cells[TAIL_POS]!));
    writeSync(fd, encodeEnd(reason, message));
  } finally {
    closeSync(fd);
  }
}

/** Writes records into a chunk buffer, and the chunks to the trace file, within the size bound. */
export class TraceWriter {
  readonly buf: Uint8Array;
  private readonly view: DataView;
  private readonly cells: Int32Array;
  pos = 0;
  /** False once the trace has ended (an end record, the size bound, a failed write). */
  on = true;
  /** The file is closed (the end written, or a write failed). */
  private closed = false;
  /** Bytes in the file so far. */
  private written = 0;
  flushedAt = 0;

  constructor(
    private readonly fd: number,
    private readonly maxBytes: number,
    /** Told once, when the recording stops before the instance ends: the size bound, or a failed write. */
    private readonly warn: (message: string) => void,
    prefix: Uint8Array,
    tail: TraceTail = newTraceTail(),
  ) {
    this.buf = new Uint8Array(tail.chunk);
    this.view = new DataView(tail.chunk);
    this.cells = new Int32Array(tail.cells);
    this.cells[TAIL_POS] = 0;
    this.cells[TAIL_FD] = fd;
    this.put(prefix, 0, prefix.length);
  }

  /** A record is whole: the supervisor may write it if the thread is terminated. */
  commit(): void {
    this.cells[TAIL_POS] = this.pos;
  }

  /**
   * Makes room for a record of up to `n` bytes; false when not recording
   * (already ended, or this record would pass the size bound, which ends it).
   */
  room(n: number): boolean {
    if (!this.on) return false;
    if (this.written + this.pos + n > this.maxBytes - END_RESERVE) {
      const message = `trace reached its size bound (--record-max-bytes ${this.maxBytes}); recording stopped, the instance goes on`;
      this.end('truncated', message);
      this.warn(message);
      return false;
    }
    if (this.pos + n > CHUNK_BYTES) this.flush();
    return true;
  }

  byte(b: number): void {
    this.buf[this.pos++] = b;
  }

  /** Unsigned varint (exact up to 2^53). */
  u(v: number): void {
    const buf = this.buf;
    let pos = this.pos;
    while (v >= 0x80) {
      const low = v & 0x7f;
      buf[pos++] = low | 0x80;
      v = (v - low) / 128;
    }
    buf[pos++] = v;
    this.pos = pos;
  }

  /** Signed varint (zigzag). */
  s(v: number): void {
    this.u(v >= 0 ? v * 2 : -v * 2 - 1);
  }

  addr(a: SocketAddress): void {
    const { buf, view } = this;
    if (a.v6) {
      buf[this.pos++] = 6;
      for (let i = 0; i < 8; i++, this.pos += 2) view.setUint16(this.pos, a.groups[i]!, true);
    } else {
      buf[this.pos++] = 4;
      for (let i = 0; i < 4; i++) buf[this.pos++] = a.groups[i]!;
    }
    view.setUint16(this.pos, a.port, true);
    this.pos += 2;
  }

  u64(v: bigint): void {
    this.view.setBigUint64(this.pos, v, true);
    this.pos += 8;
  }

  f64(v: number): void {
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  /**
   * `n` bytes of `src` from `from`: into the chunk when they fit, else
   * (the chunk written first) straight from `src` to the file. The caller
   * has made room() for them.
   */
  bytes(src: Uint8Array, from: number, n: number): void {
    if (this.pos + n <= CHUNK_BYTES) {
      if (n <= SMALL_COPY) {
        const buf = this.buf;
        let pos = this.pos;
        for (let i = 0; i < n; i++) buf[pos++] = src[from + i]!;
        this.pos = pos;
      } else {
        this.buf.set(src.subarray(from, from + n), this.pos);
        this.pos += n;
      }
      return;
    }
    this.flush();
    this.put(src, from, n);
  }

  /**
   * Writes to the file. A failed write (the disk full...) stops the
   * recording, never the instance: the file is closed as it is, and said once.
   */
  private put(src: Uint8Array, from: number, n: number): void {
    if (this.closed) return;
    try {
      this.written += writeSync(this.fd, src, from, n);
    } catch (e) {
      this.on = false;
      this.pos = 0;
      this.closed = true;
      this.cells[TAIL_POS] = 0;
      this.cells[TAIL_FD] = -1;
      try {
        closeSync(this.fd);
      } catch {
        // Closed either way.
      }
      this.warn(`recording stopped: writing the trace failed (${(e as Error).message}); the instance goes on`);
    }
  }

  text(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u(b.length);
    this.bytes(b, 0, b.length);
  }

  /** Writes the chunk to the file. */
  flush(at?: number): void {
    if (this.pos > 0) {
      this.put(this.buf, 0, this.pos);
      this.pos = 0;
      this.cells[TAIL_POS] = 0;
    }
    if (at !== undefined) this.flushedAt = at;
  }

  /** The end record, then everything to the file; the file is closed. Once. */
  end(reason: EndReason, message: string | null): void {
    if (!this.on) return;
    this.on = false;
    // The end record fits the reserve (a long message is cut).
    this.flush();
    if (this.closed) return;
    this.cells[TAIL_FD] = -1;
    const end = encodeEnd(reason, message);
    this.put(end, 0, end.length);
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** Where the recording goes and what its header says. */
export interface RecordingOptions {
  readonly file: string;
  readonly maxBytes: number;
  readonly header: TraceHeader;
  /** Shared with the supervisor, which finishes the trace of a terminated thread. */
  readonly tail: TraceTail;
}

/** The recording GuestHost: the real host's answers, each written down. */
export class RecordingHost implements GuestHost {
  readonly limits: GuestHost['limits'];
  readonly events: Uint32Array;
  readonly address: SocketAddress;
  readonly time: GuestClock;
  private readonly w: TraceWriter;
  // recv's first step, kept for its record (written once recvInto has the bytes).
  private recvHandle = 0;
  private recvMax = 0;
  /** Between recvStart and recvInto (the glue lends the guest's buffer in between: its realloc may trap). */
  private recvOpen = false;

  constructor(
    private readonly inner: InstanceHost,
    private readonly mem: GuestMemory,
    writer: TraceWriter,
  ) {
    this.w = writer;
    this.limits = inner.limits;
    this.events = inner.events;
    this.address = inner.address;
    const w = writer;
    const clock = inner.time;
    this.time = {
      monotonicNs(): bigint {
        const v = clock.monotonicNs();
        if (w.room(9)) {
          w.byte(K_MONOTONIC);
          w.u64(v);
          w.commit();
        }
        return v;
      },
      wallMs(): number {
        const v = clock.wallMs();
        if (w.room(9)) {
          w.byte(K_WALL);
          w.f64(v);
          w.commit();
        }
        return v;
      },
    };
  }

  /**
   * Opens the trace file and writes its header; null (and `warn` says why)
   * when the file cannot be opened: the instance then runs unrecorded.
   */
  static open(
    inner: InstanceHost,
    mem: GuestMemory,
    opts: RecordingOptions,
    warn: (message: string) => void,
  ): { host: RecordingHost; writer: TraceWriter } | null {
    let fd: number;
    try {
      // It holds every byte the instance received: its owner's alone.
      fd = openSync(opts.file, 'w', 0o600);
    } catch (e) {
      warn(`cannot record to ${opts.file}: ${(e as Error).message}; running unrecorded`);
      return null;
    }
    const writer = new TraceWriter(fd, opts.maxBytes, warn, encodePrefix(opts.header), opts.tail);
    return { host: new RecordingHost(inner, mem, writer), writer };
  }

  /** A line the host wrote about this instance (a denial, an OS error, a log summary), in its place among the calls. */
  hostLine(level: LogLevel, text: string): void {
    const w = this.w;
    if (!w.room(SMALL + 3 * text.length)) return;
    w.byte(K_HOST_LINE);
    w.u(LEVEL_NAMES.indexOf(level));
    w.text(text);
    w.commit();
  }

  /** How the instance ended: the end record; the file is complete. */
  end(reason: ExitReason, message: string | null): void {
    const w = this.w;
    // Ended inside a recv, after its first step: replay must lend the buffer too.
    if (this.recvOpen && w.room(SMALL)) {
      w.byte(K_RECV_STARTED);
      w.u(this.recvHandle >>> 0);
      w.u(this.recvMax);
      w.commit();
    }
    w.end(reason, message);
  }

  // ---- poll ----------------------------------------------------------------------------

  register(h: number, tokenLo: number, tokenHi: number, interest: number): number {
    const r = this.inner.register(h, tokenLo, tokenHi, interest);
    this.interest(K_REGISTER, h, tokenLo, tokenHi, interest, r);
    return r;
  }

  reregister(h: number, tokenLo: number, tokenHi: number, interest: number): number {
    const r = this.inner.reregister(h, tokenLo, tokenHi, interest);
    this.interest(K_REREGISTER, h, tokenLo, tokenHi, interest, r);
    return r;
  }

  private interest(kind: number, h: number, tokenLo: number, tokenHi: number, interest: number, r: number): void {
    const w = this.w;
    if (!w.room(SMALL)) return;
    w.byte(kind);
    w.u(h >>> 0);
    w.u(tokenLo);
    w.u(tokenHi);
    w.u(interest);
    w.s(r);
    w.commit();
  }

  deregister(h: number): number {
    const r = this.inner.deregister(h);
    this.handleResult(K_DEREGISTER, h, r);
    return r;
  }

  private handleResult(kind: number, h: number, r: number): void {
    const w = this.w;
    if (!w.room(SMALL)) return;
    w.byte(kind);
    w.u(h >>> 0);
    w.s(r);
    w.commit();
  }

  wait(max: number, timeoutMs: number): number {
    const { inner, w } = this;
    // Written before blocking, when the last write is old enough: an idle instance's trace is on disk.
    if (w.pos > 0 && inner.clock.nowMs - w.flushedAt >= FLUSH_EVERY_MS) w.flush(inner.clock.nowMs);
    const n = inner.wait(max, timeoutMs);
    if (w.room(SMALL + 15 * n)) {
      w.byte(K_WAIT);
      w.u(max);
      w.s(timeoutMs);
      w.s(n);
      const ev = this.events;
      for (let i = 0; i < 3 * n; i++) w.u(ev[i]!);
      w.commit();
    }
    return n;
  }

  // ---- tcp ------------------------------------------------------------------------------

  listen(addr: SocketAddress, backlog: number): number {
    const r = this.inner.listen(addr, backlog);
    const w = this.w;
    if (w.room(SMALL)) {
      w.byte(K_LISTEN);
      w.addr(addr);
      w.u(backlog);
      w.s(r);
      w.commit();
    }
    return r;
  }

  accept(h: number): number {
    const r = this.inner.accept(h);
    const w = this.w;
    if (w.room(SMALL)) {
      w.byte(K_ACCEPT);
      w.u(h >>> 0);
      w.s(r);
      if (r >= 0) w.addr(this.address);
      w.commit();
    }
    return r;
  }

  connect(addr: SocketAddress): number {
    const r = this.inner.connect(addr);
    const w = this.w;
    if (w.room(SMALL)) {
      w.byte(K_CONNECT);
      w.addr(addr);
      w.s(r);
      w.commit();
    }
    return r;
  }

  recvStart(h: number, max: number): number {
    const r = this.inner.recvStart(h, max);
    if (r < 0) {
      const w = this.w;
      if (w.room(SMALL)) {
        w.byte(K_RECV_NONE);
        w.u(h >>> 0);
        w.u(max);
        w.s(r);
        w.commit();
      }
    } else {
      this.recvHandle = h;
      this.recvMax = max;
      this.recvOpen = true;
    }
    return r;
  }

  recvLength(max: number): number {
    return this.inner.recvLength(max);
  }

  recvInto(slot: number, at: number, len: number): number {
    const r = this.inner.recvInto(slot, at, len);
    this.recvOpen = false;
    this.recvRecord(this.recvHandle, this.recvMax, r, at);
    return r;
  }

  private recvRecord(h: number, max: number, r: number, at: number): void {
    const w = this.w;
    if (!w.room(SMALL + Math.max(r, 0))) return;
    w.byte(K_RECV);
    w.u(h >>> 0);
    w.u(max);
    w.s(r);
    if (r > 0) w.bytes(this.mem.u8, at - this.mem.base, r);
    w.commit();
  }

  send(h: number, at: number, len: number): number {
    const r = this.inner.send(h, at, len);
    const w = this.w;
    if (w.room(SMALL)) {
      w.byte(K_SEND);
      w.u(h >>> 0);
      w.u(len);
      w.s(r);
      w.commit();
    }
    return r;
  }

  shutdown(h: number, how: number): number {
    const r = this.inner.shutdown(h, how);
    const w = this.w;
    if (w.room(SMALL)) {
      w.byte(K_SHUTDOWN);
      w.u(h >>> 0);
      w.u(how);
      w.s(r);
      w.commit();
    }
    return r;
  }

  close(h: number): number {
    const r = this.inner.close(h);
    this.handleResult(K_CLOSE, h, r);
    return r;
  }

  addressOf(h: number, ofPeer: boolean): number {
    const r = this.inner.addressOf(h, ofPeer);
    const w = this.w;
    if (w.room(SMALL)) {
      w.byte(K_ADDRESS);
      w.u(h >>> 0);
      w.u(ofPeer ? 1 : 0);
      w.s(r);
      if (r >= 0) w.addr(this.address);
      w.commit();
    }
    return r;
  }

  // ---- handover ---------------------------------------------------------------------------

  // Live handover is not recorded: a recorded instance neither gives nor
  // takes connections (give says denied, adopt would-block, whatever the
  // arguments), so that a replay answers the same without a record; its
  // connections drain on a reload (README, "Reload and handover").
  readonly adoptedState = new Uint8Array(0);

  give(_h: number, _state: Uint8Array): number {
    return fail(ErrorCode.Denied);
  }

  adopt(_l: number): number {
    return fail(ErrorCode.WouldBlock);
  }

  // ---- metrics ----------------------------------------------------------------------------

  // Metrics are not recorded: what they answer depends only on the calls and
  // the series cap (in the header), so a replay answers the same with a
  // store of its own (trace/replay.ts).
  metricDefine(kind: number, name: string, help: string, labels: readonly string[], buckets: ArrayLike<number>): number {
    return this.inner.metricDefine(kind, name, help, labels, buckets);
  }

  metricSeries(m: number, values: readonly string[]): number {
    return this.inner.metricSeries(m, values);
  }

  metricReport(u32: Uint32Array, f64: Float64Array, at: number, count: number): number {
    return this.inner.metricReport(u32, f64, at, count);
  }

  // ---- log ------------------------------------------------------------------------------

  admitGuestLine(): boolean {
    const ok = this.inner.admitGuestLine();
    const w = this.w;
    if (w.room(2)) {
      w.byte(K_ADMIT);
      w.byte(ok ? 1 : 0);
      w.commit();
    }
    return ok;
  }

  guestLine(level: LogLevel, text: string): void {
    const w = this.w;
    if (w.room(SMALL + 3 * text.length)) {
      w.byte(K_GUEST_LINE);
      w.u(LEVEL_NAMES.indexOf(level));
      w.text(text);
      w.commit();
    }
    this.inner.guestLine(level, text);
  }
}
