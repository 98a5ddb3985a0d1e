/**
 * Replay (`wasmux replay`): runs a plugin instance again with no network,
 * its host answered from a trace (format.ts). A GuestHost whose every call
 * checks that the guest asks what the trace holds next (the same kind of
 * call, the same handle, length, interest, address, log text...) and
 * returns what the host returned then: the numbers, the events, the peer
 * addresses, the received bytes (written into guest memory where the kernel
 * wrote them), the clocks. The glue lifts and lowers exactly as in the run,
 * so a deterministic plugin does exactly what it did: it logs the same
 * lines, sends the same bytes, and traps with the same message (the same
 * describeEnd as the worker's).
 *
 * A call that does not match is a divergence: ReplayDiverged names the
 * call's number, what the guest asked and what the trace holds.
 */
import { SocketAddress } from '../backends/address.js';
import { WasmuxError } from '../errors.js';
import { ErrorCode, LEVEL_NAMES } from '../generated/contract.js';
import { fail } from '../backends/backend.js';
import { Gate } from '../sandbox/gate.js';
import type { GuestClock, GuestHost } from '../sandbox/guest-host.js';
import type { LogLevel, LogOrigin } from '../sandbox/instance-host.js';
import { CTRL_COUNT, STAT_COUNT } from '../sandbox/shared.js';
import { MetricsStore, metricValuesBuffer } from '../sandbox/metrics.js';
import { POLICY_DEFAULTS } from '../sandbox/policy.js';
import { type ExitReason, StopSignal, WatchdogKill, describeEnd } from '../sandbox/traps.js';
import { GuestMemory, memoryNote } from '../wit/guest-memory.js';
import { PluginInstance } from '../wit/instance.js';
import {
  type DecodedRecord,
  END_REASONS,
  type EndReason,
  type FieldValue,
  K_ACCEPT,
  K_ADDRESS,
  K_ADMIT,
  K_CLOSE,
  K_CONNECT,
  K_DEREGISTER,
  K_END,
  K_GUEST_LINE,
  K_HOST_LINE,
  K_LISTEN,
  K_MONOTONIC,
  K_RECV,
  K_RECV_NONE,
  K_RECV_STARTED,
  K_REGISTER,
  K_REREGISTER,
  K_SEND,
  K_SHUTDOWN,
  K_WAIT,
  K_WALL,
  RECORD_KINDS,
  type TraceHeader,
  type TraceReader,
  describeFields,
  endMessageText,
  showValue,
} from './format.js';

/** The guest asked something else than the trace holds at that call. */
export class ReplayDiverged extends WasmuxError {
  constructor(
    readonly call: number,
    message: string,
  ) {
    super('WASMUX_ERR_REPLAY_DIVERGED', message);
  }
}

/** The trace ends here without the instance's end: cut at the size bound, or its thread was terminated. */
class ReplayCut extends Error {
  constructor(
    readonly reason: 'truncated' | 'incomplete',
    readonly note: string,
  ) {
    super(note);
  }
}

export interface ReplayLine {
  level: LogLevel;
  origin: LogOrigin;
  message: string;
}

/** One connection the guest had (accepted or connected), in the order they opened. */
export interface ReplayConnection {
  handle: number;
  how: 'accepted' | 'connected';
  /** The peer (accepted) or the address connected to. */
  peer: string;
  /** What the guest sent on it (what the host's send took), in order. */
  sent: Buffer;
  /** Bytes the guest received on it. */
  received: number;
  closed: boolean;
}

export interface ReplayResult {
  header: TraceHeader;
  /** Every line the instance's thread wrote, host and guest, in order (every level). */
  lines: ReplayLine[];
  connections: ReplayConnection[];
  /** Host calls replayed. */
  calls: number;
  /**
   * How the replayed instance ended: as the recorded one did (a trap with its
   * message, stopped...), or 'truncated' (the trace was cut at its size
   * bound: replay stopped there) or 'incomplete' (the trace has no end: the
   * recording thread was terminated).
   */
  end: { reason: EndReason | 'incomplete'; message: string | null };
  /** The trace's end record, once replay has reached it (null: not reached, or the trace has none). */
  recorded: { reason: EndReason; message: string | null } | null;
  /** Null when the replay matched the trace to its end. */
  diverged: { call: number; message: string } | null;
}

interface MutableConnection {
  handle: number;
  how: 'accepted' | 'connected';
  peer: string;
  sent: Buffer[];
  received: number;
  closed: boolean;
}

class ReplayHost implements GuestHost {
  readonly limits: GuestHost['limits'];
  readonly events: Uint32Array;
  readonly address = new SocketAddress();
  readonly time: GuestClock;
  /** Calls taken so far (the divergence message's number: 1 is the first). */
  calls = 0;
  readonly lines: ReplayLine[] = [];
  readonly connections: MutableConnection[] = [];
  /** The end record, once reached. */
  endRecord: { reason: EndReason; message: string | null } | null = null;
  private readonly open = new Map<number, MutableConnection>();
  private recvPending: DecodedRecord | null = null;

  constructor(
    private readonly reader: TraceReader,
    private readonly mem: GuestMemory,
    /** Told once, when the last call the trace holds has been taken (replay-worker.ts watches what follows). */
    private onExhausted: (() => void) | null,
  ) {
    const { limits } = reader.header;
    this.limits = { maxMemoryMiB: limits.maxMemoryMiB, maxConnections: limits.maxConnections };
    this.events = new Uint32Array(3 * limits.maxEventsPerWait);
    const cap = limits.metricSeries ?? POLICY_DEFAULTS.metricSeries;
    this.metricStore = new MetricsStore(cap, new Float64Array(metricValuesBuffer(cap)), {
      defined() {},
      seriesAdded() {},
      capReached() {},
    });
    this.time = {
      monotonicNs: () => this.take(K_MONOTONIC, []).f.ns as bigint,
      wallMs: () => this.take(K_WALL, []).f.ms as number,
    };
  }

  /** Host lines up to the next call: they were written before it, in the run. */
  hostLines(): void {
    while (this.reader.peekKind() === K_HOST_LINE) {
      const r = this.reader.next();
      this.lines.push({ level: LEVEL_NAMES[r.f.level as number] ?? 'info', origin: 'host', message: r.f.text as string });
    }
  }

  /** The end record, when the trace is there (decoded once). */
  readEnd(): { reason: EndReason; message: string | null } | null {
    this.hostLines();
    if (this.endRecord === null && this.reader.peekKind() === K_END) {
      const r = this.reader.next();
      const reason = END_REASONS[r.f.reason as number];
      if (reason === undefined) throw new WasmuxError('WASMUX_ERR_TRACE', `${this.reader.file}: an end record with reason ${r.f.reason}`);
      this.endRecord = { reason, message: r.f.hasMessage ? (r.f.message as string) : null };
    }
    return this.endRecord;
  }

  private asked(kind: number, args: readonly FieldValue[]): string {
    const spec = RECORD_KINDS[kind]!;
    const names = spec.fields.filter(([, , role]) => role === 'arg').map(([name]) => name);
    return `${spec.call}(${names.map((n, i) => `${n} ${showValue(args[i]!)}`).join(', ')})`;
  }

  private diverge(message: string): never {
    throw new ReplayDiverged(this.calls, `call #${this.calls}: ${message}`);
  }

  /**
   * The next call's record: of `kind` (or `alt`, `alt2`), asked with `args` (the
   * spec's arg fields, in order); a divergence otherwise. At the trace's end
   * the recorded end happens instead: a stop in wait, a kill, the cut.
   */
  private take(kind: number, args: readonly FieldValue[], alt = -1, alt2 = -1): DecodedRecord {
    this.calls++;
    const end = this.readEnd();
    if (end !== null) {
      if (end.reason === 'stopped' && kind === K_WAIT) throw new StopSignal();
      if (end.reason === 'killed') throw new WatchdogKill();
      if (end.reason === 'truncated') throw new ReplayCut('truncated', end.message ?? 'the trace was cut at its size bound');
      this.diverge(`the guest called ${this.asked(kind, args)} after the trace's last call (the recorded instance ${end.reason} there)`);
    }
    if (this.reader.atEnd) {
      throw new ReplayCut('incomplete', 'the trace ends without an end record (the recording thread was terminated)');
    }
    const rec = this.reader.next();
    if (this.onExhausted !== null) {
      this.hostLines();
      const next = this.reader.peekKind();
      if (next === -1 || next === K_END) {
        this.onExhausted();
        this.onExhausted = null;
      }
    }
    if (rec.kind !== kind && rec.kind !== alt && rec.kind !== alt2) {
      this.diverge(`the guest called ${this.asked(kind, args)}; the trace holds ${rec.spec.call}(${describeFields(rec, 'arg')}) here`);
    }
    let i = 0;
    for (const [name, , role] of rec.spec.fields) {
      if (role !== 'arg') continue;
      const want = rec.f[name]!;
      const got = args[i++]!;
      const same = want instanceof SocketAddress ? got instanceof SocketAddress && want.equals(got) : want === got;
      if (!same) {
        this.diverge(`the guest called ${this.asked(kind, args)}; the trace holds ${rec.spec.call}(${describeFields(rec, 'arg')}) here`);
      }
    }
    return rec;
  }

  private result(rec: DecodedRecord): number {
    return rec.f.result as number;
  }

  // ---- poll ----------------------------------------------------------------------------

  register(h: number, tokenLo: number, tokenHi: number, interest: number): number {
    return this.result(this.take(K_REGISTER, [h >>> 0, tokenLo, tokenHi, interest]));
  }

  reregister(h: number, tokenLo: number, tokenHi: number, interest: number): number {
    return this.result(this.take(K_REREGISTER, [h >>> 0, tokenLo, tokenHi, interest]));
  }

  deregister(h: number): number {
    return this.result(this.take(K_DEREGISTER, [h >>> 0]));
  }

  wait(max: number, timeoutMs: number): number {
    const rec = this.take(K_WAIT, [max, timeoutMs]);
    const ev = rec.f.events as Uint32Array;
    if (ev.length > this.events.length) this.diverge(`the trace's wait reports ${ev.length / 3} events, more than maxEventsPerWait`);
    this.events.set(ev);
    return this.result(rec);
  }

  // ---- tcp ------------------------------------------------------------------------------

  listen(addr: SocketAddress, backlog: number): number {
    return this.result(this.take(K_LISTEN, [addr, backlog]));
  }

  accept(h: number): number {
    const rec = this.take(K_ACCEPT, [h >>> 0]);
    const r = this.result(rec);
    if (r >= 0) {
      this.address.copyFrom(rec.f.peer as SocketAddress);
      this.opened(r, 'accepted', this.address);
    }
    return r;
  }

  connect(addr: SocketAddress): number {
    const r = this.result(this.take(K_CONNECT, [addr]));
    if (r >= 0) this.opened(r, 'connected', addr);
    return r;
  }

  private opened(h: number, how: 'accepted' | 'connected', peer: SocketAddress): void {
    const c: MutableConnection = { handle: h, how, peer: String(peer), sent: [], received: 0, closed: false };
    this.connections.push(c);
    this.open.set(h, c);
  }

  recvStart(h: number, max: number): number {
    const rec = this.take(K_RECV, [h >>> 0, max], K_RECV_NONE, K_RECV_STARTED);
    if (rec.kind === K_RECV_NONE) return this.result(rec);
    this.recvPending = rec;
    return 0;
  }

  recvLength(max: number): number {
    return Math.min(max, this.reader.header.limits.maxRecvBytes);
  }

  recvInto(_slot: number, at: number, len: number): number {
    const rec = this.recvPending!;
    this.recvPending = null;
    // The recorded instance ended before this read (its cabi_realloc trapped); this one did not.
    if (rec.kind === K_RECV_STARTED) this.diverge('tcp.recv read into the lent buffer; the recorded instance ended before it did');
    const r = this.result(rec);
    if (r > len) this.diverge(`tcp.recv lent ${len} bytes; the trace received ${r}`);
    if (r > 0) {
      this.mem.u8.set(rec.f.bytes as Uint8Array, at - this.mem.base);
      const c = this.open.get(rec.f.handle as number);
      if (c) c.received += r;
    }
    return r;
  }

  send(h: number, at: number, len: number): number {
    const r = this.result(this.take(K_SEND, [h >>> 0, len]));
    if (r > 0) {
      const c = this.open.get(h >>> 0);
      const from = at - this.mem.base;
      if (c) c.sent.push(Buffer.from(this.mem.u8.slice(from, from + r)));
    }
    return r;
  }

  shutdown(h: number, how: number): number {
    return this.result(this.take(K_SHUTDOWN, [h >>> 0, how]));
  }

  close(h: number): number {
    const r = this.result(this.take(K_CLOSE, [h >>> 0]));
    const c = this.open.get(h >>> 0);
    if (r >= 0 && c) {
      c.closed = true;
      this.open.delete(h >>> 0);
    }
    return r;
  }

  addressOf(h: number, ofPeer: boolean): number {
    const rec = this.take(K_ADDRESS, [h >>> 0, ofPeer ? 1 : 0]);
    const r = this.result(rec);
    if (r >= 0) this.address.copyFrom(rec.f.address as SocketAddress);
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

  // Not recorded (trace/recorder.ts): answered by a store of the recorded
  // cap, which answers as the run's did for the same calls.
  private readonly metricStore: MetricsStore;

  metricDefine(kind: number, name: string, help: string, labels: readonly string[], buckets: ArrayLike<number>): number {
    return this.metricStore.define(kind, name, help, labels, buckets);
  }

  metricSeries(m: number, values: readonly string[]): number {
    return this.metricStore.series(m, values);
  }

  metricReport(u32: Uint32Array, f64: Float64Array, at: number, count: number): number {
    return this.metricStore.report(u32, f64, at, count);
  }

  // ---- log ------------------------------------------------------------------------------

  admitGuestLine(): boolean {
    return this.take(K_ADMIT, []).f.admitted === 1;
  }

  guestLine(level: LogLevel, text: string): void {
    this.take(K_GUEST_LINE, [LEVEL_NAMES.indexOf(level), text]);
    this.lines.push({ level, origin: 'guest', message: text });
  }
}

/** What has been replayed so far, as a result (its end and divergence for the caller to fill in). */
function resultOf(reader: TraceReader, host: ReplayHost, end: ReplayResult['end'], diverged: ReplayResult['diverged']): ReplayResult {
  return {
    header: reader.header,
    lines: [...host.lines],
    connections: host.connections.map((c) => ({ ...c, sent: Buffer.concat(c.sent) })),
    calls: host.calls,
    end,
    recorded: host.endRecord,
    diverged,
  };
}

/**
 * Replays the trace `reader` on `module` (the plugin's main core module,
 * capped as the run capped it: replay's caller compiles it). Never throws
 * for a divergence: the result says where. `exhausted` is told, once, what
 * has been replayed when the trace's last call has been taken: a guest that
 * then runs on without calling the host (one the watchdog killed) never
 * returns from here.
 */
export function replay(reader: TraceReader, module: WebAssembly.Module, exhausted?: (sofar: ReplayResult) => void): ReplayResult {
  const { header } = reader;
  const mem = new GuestMemory();
  const gate = new Gate(new Int32Array(new SharedArrayBuffer(CTRL_COUNT * 4)), new Float64Array(new SharedArrayBuffer(STAT_COUNT * 8)));
  const host: ReplayHost = new ReplayHost(
    reader,
    mem,
    exhausted === undefined
      ? null
      : () => {
          host.readEnd();
          exhausted(resultOf(reader, host, { reason: 'incomplete', message: null }, null));
        },
  );
  let end: ReplayResult['end'] | undefined;
  let diverged: ReplayResult['diverged'] = null;
  const listen = header.listen.map((text) => {
    const a = SocketAddress.parse(text);
    if (a === null) throw new WasmuxError('WASMUX_ERR_TRACE', `${reader.file}: its header's listen address "${text}" is not an address`);
    return a;
  });
  let ran: { reason: ExitReason; message: string | null } | null = null;
  try {
    const plugin = new PluginInstance(module, { mem, host }, gate);
    plugin.initialize();
    const message = plugin.run({ config: header.config, listen, instance: header.instance });
    ran = { reason: message === null ? 'returned' : 'failed', message };
  } catch (e) {
    if (e instanceof ReplayDiverged) diverged = { call: e.call, message: e.message };
    else if (e instanceof ReplayCut) end = { reason: e.reason, message: e.note };
    else if (e instanceof WasmuxError && e.code === 'WASMUX_ERR_TRACE') throw e;
    else ran = describeEnd(e, () => memoryNote(mem, header.limits.maxMemoryMiB));
  }
  if (ran !== null) {
    // The guest ended by itself (or by the recorded stop or kill): the trace must end the same way here.
    end = ran;
    const recorded = host.readEnd();
    if (recorded === null && !reader.atEnd) {
      host.calls++;
      const next = reader.next();
      diverged = {
        call: host.calls,
        message: `call #${host.calls}: the replayed instance ended (${ran.reason}${ran.message === null ? '' : `: ${ran.message}`}) where the trace holds ${next.spec.call}(${describeFields(next, 'arg')})`,
      };
    } else if (
      recorded !== null &&
      (recorded.reason !== ran.reason || recorded.message !== (ran.message === null ? null : endMessageText(ran.message)))
    ) {
      diverged = {
        call: host.calls,
        message: `the replayed instance ended ${ran.reason}${ran.message === null ? '' : `: ${ran.message}`}; the recorded one ended ${recorded.reason}${recorded.message === null ? '' : `: ${recorded.message}`}`,
      };
    } else if (recorded === null) {
      end = { reason: ran.reason, message: ran.message };
    }
  }
  return resultOf(reader, host, end ?? { reason: 'incomplete', message: null }, diverged);
}
