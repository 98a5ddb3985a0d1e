/**
 * An instance's host: every rule the sandbox applies to one plugin
 * instance's calls, apart from how the calls are encoded. The WIT glue
 * (host/wit/*.ts) lifts a call's arguments out of the guest, calls one
 * method here, and lowers what it returns; this class owns what happens in
 * between:
 *
 *   the handle table     handles to sockets, kinds, registrations, tokens
 *   the caps             maxConnections (at accept and connect), maxEventsPerWait,
 *                        maxRecvBytes, maxBacklog
 *   the allowlists       listen addresses, outbound connect rules
 *   the readiness cache  would-block answered without a system call until
 *                        the next event (drained(): mio's do_io rule)
 *   the idle sweep       connections with no traffic for idleTimeoutMs
 *   stop and drain       the supervisor's control words, read at every wait
 *   the kill gate        around every call that opens or closes a descriptor
 *   the counters         in shared memory, for the supervisor
 *
 * Results are numbers: a handle, a count or 0, or `fail(ErrorCode)` (the
 * backend contract's encoding). Nothing here reads or writes guest memory
 * except through the absolute addresses the glue passes for recv and send.
 */
import {
  type LEVEL_NAMES,
  ErrorCode,
  INTEREST_READABLE,
  INTEREST_WRITABLE,
  READY_ERROR,
  READY_HANG_UP,
  READY_READABLE,
  READY_READ_CLOSED,
  READY_WRITABLE,
} from '../generated/contract.js';
import { codeOf, fail, type Backend } from '../backends/backend.js';
import { SocketAddress, type AddressData } from '../backends/address.js';
import {
  CTRL_DRAIN,
  CTRL_ADOPT_SEQ,
  CTRL_HANDOVER,
  CTRL_STOP,
  DRAIN_DONE,
  DRAIN_STOP,
  STAT_ACCEPTED,
  STAT_ADOPTED,
  STAT_GIVEN,
  STAT_BYTES_IN,
  STAT_BYTES_OUT,
  STAT_EVENTS,
  STAT_IDLE_CLOSED,
  STAT_OPEN,
  STAT_PROXY_REJECTED,
  STAT_REFUSED,
  STAT_TURN,
  STAT_TURN_SUM,
  STAT_WAITS,
  TURN_BOUNDS,
} from './shared.js';
import { observe, type MetricsStore } from './metrics.js';
import { KIND_DRAINED, KIND_LISTENER, KIND_PENDING, KIND_STREAM, NO_FD, type HandleTable } from './handle-table.js';
import { PROXY_MAX_BYTES, PROXY_REASONS, parseProxyHeader, type ProxyReason } from './proxy-header.js';
import { addressOf as nativeAddressOf } from '../ffi/native-memory.js';
import { LOG_DENIAL, LOG_GUEST, LOG_NOTICE, LOG_OS_ERROR, type LogLimiter } from './log-limiter.js';
import type { Gate } from './gate.js';
import type { InstanceKnobs } from './policy.js';
import { REAL_CLOCK, type Clock } from './clock.js';
import { StopSignal } from './traps.js';
import { WasmuxError } from '../errors.js';
import type { GuestHost } from './guest-host.js';

/** A log line's level: the WIT `level` enum's names. */
export type LogLevel = (typeof LEVEL_NAMES)[number];
/** Who wrote a line's text: the host (about an instance), or the guest itself (its `log` calls). */
export type LogOrigin = 'host' | 'guest';

/**
 * What this instance runs under: the policy's instance knobs (POLICY_KNOBS,
 * sandbox/policy.ts: maxConnections, maxMemoryMiB, idleTimeoutMs,
 * maxSendQueueBytes, maxEventsPerWait), and what the host adds.
 */
export interface InstanceLimits extends InstanceKnobs {
  /** Addresses `tcp.listen` may bind (port 0 in the policy allows any port). */
  readonly listen: readonly SocketAddress[];
  /** May `tcp.connect` reach `addr`? */
  connectAllowed(addr: SocketAddress): boolean;
  /** Bytes one recv may ask for (ServeOptions.maxRecvBytes). */
  readonly maxRecvBytes: number;
  /** The listen backlog at most. */
  readonly maxBacklog: number;
  /** Whether listeners set SO_REUSEPORT (several workers share the port). */
  readonly sharedListen: boolean;
  /**
   * Policy proxyProtocol: every connection accepted starts with a PROXY
   * protocol header (version 1 or 2), which the host reads before the guest
   * sees the connection (proxyHeaderTimeoutMs bounds the wait for it).
   */
  readonly proxyProtocol?: boolean;
}

/** A connection whose PROXY protocol header is not complete yet (the host's, not the guest's). */
interface PendingHeader {
  readonly slot: number;
  /** Its handle (never shown to the guest): the key it is registered under, and a stale-entry check. */
  readonly handle: number;
  /** The listener it was accepted on (a handle: the listener may be closed meanwhile). */
  readonly listener: number;
  /** When it is closed if the header is still incomplete. */
  readonly until: number;
  /** The header's bytes so far (allocated once the first read leaves it incomplete). */
  bytes: Uint8Array | null;
  n: number;
}

/** readHeader's outcomes. */
const HEADER_INCOMPLETE = 0;
const HEADER_DONE = 1;
const HEADER_REJECTED = 2;

export interface InstanceHostOptions {
  readonly table: HandleTable;
  readonly backend: Backend;
  readonly limits: InstanceLimits;
  /** Counters in shared memory (sandbox/shared.ts STAT_*). */
  readonly stats: Float64Array;
  /** Control words in shared memory (sandbox/shared.ts CTRL_*). */
  readonly control: Int32Array;
  /** The kill gate over control[CTRL_STATE]: every call that opens or closes a descriptor passes it. */
  readonly gate: Gate;
  /**
   * The instance's log rate. Every line written on the guest's behalf asks
   * `logLimit.admit(kind)` first, before it builds its text.
   */
  readonly logLimit: LogLimiter;
  /** Where time comes from (default: the real clock). */
  readonly time?: Clock;
  /** Writes one line about this instance (already admitted). */
  log(level: LogLevel, origin: LogOrigin, message: string): void;
  /**
   * The guest started listening on `addr`, on descriptor `fd` (the
   * supervisor reports the address, and hands `fd` on to the next version's
   * instance on a reload).
   */
  listening(addr: SocketAddress, fd: number): void;
  /**
   * Listening sockets handed over from the previous version's instance
   * (PluginServer.reload), one cell per `limits.listen` address: a
   * descriptor, or -1. Shared with the supervisor, which closes whatever is
   * still recorded when the thread is gone; `tcp.listen` on that address
   * takes the socket over (its cell cleared in the same step) instead of
   * opening one.
   */
  readonly inherited?: Float64Array;
  /** Live handover (wit/handover.wit); absent: give says denied and no connection is ever adopted. */
  readonly handover?: HandoverLink;
  /** Plugin-defined metrics (wit/metrics.wit); absent: define says `limit`. */
  readonly metrics?: MetricsStore;
}

/** A connection handed to this instance, waiting for the guest's handover.adopt. */
export interface HandedOver {
  /** Its cell in HandoverLink.incoming (which records the socket until it is adopted or closed). */
  cell: number;
  /** The listen address (index in limits.listen) it was accepted on. */
  listen: number;
  state: Uint8Array;
  /** The version it came from (for the supervisor's counts). */
  from: number;
  /** The client a PROXY protocol header named (proxyProtocol): its peer-address here too. */
  peer?: AddressData;
}

/**
 * The instance's side of live handover, shared with the supervisor. A
 * socket is recorded in exactly one place at every step that a dying thread
 * could interrupt (or two, which the supervisor closes once): the giver's
 * table, then its `outgoing` cell, then (the supervisor) the adopter's
 * `incoming` cell, then the adopter's table.
 */
export interface HandoverLink {
  /** Int32 cells: sockets this instance gave and the supervisor has not taken yet (-1: free). The worker only fills free cells. */
  readonly outgoing: Int32Array;
  /** Int32 cells: sockets handed to this instance not yet adopted (-1: free). The worker only empties them. */
  readonly incoming: Int32Array;
  /**
   * A connection was given: its outgoing cell, listen address and a copy
   * of its state (posted at once, so that it outlives a trap of the giver).
   */
  gave(cell: number, listen: number, state: Uint8Array, peer?: AddressData): void;
  /**
   * The guest waits again: the connections given since its last wait are a
   * batch, which the new version adopts together (a chat room's members
   * all arrive before any of them is read from).
   */
  batchEnd(): void;
  /** The guest takes connections on listen address `listen` (its first adopt there). */
  adopting(listen: number): void;
  /** A handover ended here: adopted, or failed (with why). `from`: the version it came from (null: this one gave it). */
  ended(from: number | null, ok: boolean): void;
  /** Connections handed over since the last call. */
  receive(): HandedOver[];
}

/** How long a connection handed over may wait for the guest's adopt before the host closes it. */
export const ADOPT_DEADLINE_MS = 5000;

/** A wait's slice (ms, -1: no bound) shortened to end within `dueInMs`. */
function wakeBy(slice: number, dueInMs: number): number {
  const t = Math.max(0, Math.ceil(dueInMs));
  return slice < 0 || slice > t ? t : slice;
}

/** Connections closed at the cap within one accept call before the guest is told to retry. */
const REFUSE_BATCH = 256;
const MAX_WAIT_MS = 0x7fffffff;
/** Direction of a would-block, for drained(). */
const READ = 0;
const WRITE = 1;

export class InstanceHost implements GuestHost {
  readonly table: HandleTable;
  readonly backend: Backend;
  readonly limits: InstanceLimits;
  /** Where time comes from: the host's deadlines and the guest's clocks (InstanceHostOptions.time). */
  readonly time: Clock;
  /** `time.nowMs()` as of the last wait: a clock read for free. */
  readonly clock: { nowMs: number };
  /** The address accept(), localAddress() and peerAddress() report (valid until the next call). */
  readonly address = new SocketAddress();
  /**
   * What wait() reports: per event, the token's low and high halves and
   * the WIT readiness bits. Allocated once for maxEventsPerWait.
   */
  readonly events: Uint32Array;

  private readonly opts: InstanceHostOptions;
  private readonly stats: Float64Array;
  private readonly control: Int32Array;
  private readonly gate: Gate;
  private readonly logLimit: LogLimiter;
  private readonly out: Uint32Array;
  private readonly stop = new StopSignal();
  private readonly listenRule: string;
  private readonly sweepEveryMs: number;
  private nextSweep: number;
  private drainedListeners = false;
  /** Drained listeners the guest had registered: told (readable) of connections still handed out on them. */
  private readonly drainedHeard = new Set<number>();
  private refusedLogged = false;
  /** Per slot: the listen address (index in limits.listen) of a listener, or that a stream was accepted on; -1: none. */
  private readonly addrIndex: Int16Array;
  /** Listen addresses the guest adopts on (bit i: it called handover.adopt on a listener of address i). */
  private adoptingMask = 0;
  /** Connections handed over, waiting for adopt, oldest first, with their deadlines. */
  private handed: (HandedOver & { until: number })[] = [];
  /** Events the host makes up: (token lo, token hi, readiness) triples (a drained listener's hang-up, a handover's readable). */
  private synthetic: number[] = [];
  private outCell = 0;
  /** CTRL_ADOPT_SEQ as of the last look at the handover messages. */
  private adoptSeq = 0;
  /** Connections given since the last wait (HandoverLink.batchEnd). */
  private given = 0;
  /** adopt's state, read by the glue right after a successful call. */
  adoptedState: Uint8Array = new Uint8Array(0);
  /** `time.nowMs()` when the last wait returned to the guest (-1: none yet), for the loop-turn histogram. */
  private lastReturn = -1;
  private metricCapLogged = false;
  /** PROXY protocol (limits.proxyProtocol): per slot, the client address its header carried (undefined: the socket's own peer). */
  private readonly proxied: (SocketAddress | undefined)[];
  /** Connections reading their header, oldest (earliest deadline) first; entries of connections since done are skipped. */
  private headers: PendingHeader[] = [];
  /** The same connections by slot. */
  private readonly pendingHeaders = new Map<number, PendingHeader>();
  /** Per listener slot: connections whose header is complete, in order, waiting for the guest's accept (their slots). */
  private readonly readyQueue = new Map<number, number[]>();
  /** Where a header's bytes are read to (PROXY_MAX_BYTES), and its address for the backend. */
  private readonly scratch: Uint8Array | null = null;
  private readonly scratchAt: number = 0;

  constructor(opts: InstanceHostOptions) {
    this.opts = opts;
    this.time = opts.time ?? REAL_CLOCK;
    this.clock = { nowMs: this.time.nowMs() };
    ({
      table: this.table,
      backend: this.backend,
      limits: this.limits,
      stats: this.stats,
      control: this.control,
      gate: this.gate,
      logLimit: this.logLimit,
    } = opts);
    const max = this.limits.maxEventsPerWait;
    this.out = new Uint32Array(2 * max);
    this.events = new Uint32Array(3 * max);
    // Built once: a denial in a loop must not build it each time.
    this.listenRule = `listen addresses are ${this.limits.listen.map(String).join(', ') || '(none)'}`;
    // Idle connections are found by a sweep at most every second (a quarter
    // of the timeout when that is shorter): O(open handles) per sweep, nothing per call.
    const idleMs = this.limits.idleTimeoutMs;
    this.sweepEveryMs = idleMs > 0 ? Math.max(10, Math.min(1000, Math.floor(idleMs / 4))) : 0;
    this.nextSweep = this.time.nowMs() + this.sweepEveryMs;
    this.addrIndex = new Int16Array(this.table.fds.length).fill(-1);
    // Sized once, as the table (written at every close): a packed array, not a sparse one.
    this.proxied = new Array<SocketAddress | undefined>(this.table.fds.length).fill(undefined);
    if (this.limits.proxyProtocol) {
      if (!this.backend.peek) {
        throw new WasmuxError(
          'WASMUX_ERR_BAD_POLICY',
          `proxyProtocol: the ${this.backend.name} backend cannot read PROXY protocol headers`,
        );
      }
      this.scratch = new Uint8Array(PROXY_MAX_BYTES);
      this.scratchAt = nativeAddressOf(this.scratch);
    }
  }

  // ---- poll -------------------------------------------------------------------------

  register(h: number, tokenLo: number, tokenHi: number, interest: number): number {
    const slot = this.owned(h);
    return slot < 0 ? fail(ErrorCode.BadHandle) : this.setInterest(slot, tokenLo, tokenHi, interest, false);
  }

  reregister(h: number, tokenLo: number, tokenHi: number, interest: number): number {
    const slot = this.owned(h);
    return slot < 0 ? fail(ErrorCode.BadHandle) : this.setInterest(slot, tokenLo, tokenHi, interest, true);
  }

  deregister(h: number): number {
    const { table } = this;
    const slot = this.owned(h);
    if (slot < 0) return fail(ErrorCode.BadHandle);
    // A drained listener: its socket is gone already.
    if (table.kind[slot] === KIND_DRAINED && this.drainedHeard.delete(slot)) return 0;
    if (table.registered[slot] === 0) return fail(ErrorCode.Closed);
    const r = this.backend.deregister(table.fds[slot]!);
    table.registered[slot] = 0;
    return r;
  }

  /**
   * Blocks until events or the deadline (`timeoutMs` < 0: none), serving
   * the supervisor's stop and drain, the idle sweep and the log summaries
   * meanwhile. Writes the events (token halves, readiness) into `events`
   * and returns how many. Throws the StopSignal when the instance is to stop.
   */
  wait(max: number, timeoutMs: number): number {
    const { table, backend, control, gate, out, logLimit, clock, time } = this;
    max = Math.min(Math.max(max, 1), this.limits.maxEventsPerWait);
    let now = time.nowMs();
    // The guest's turn since the last wait returned (its first turn, from instantiation, is not one).
    if (this.lastReturn >= 0) this.turn((now - this.lastReturn) / 1000);
    const timeout = timeoutMs < 0 ? -1 : Math.min(timeoutMs, MAX_WAIT_MS);
    const deadline = timeout < 0 ? Infinity : now + timeout;
    const sweepEveryMs = this.sweepEveryMs;
    let n: number;
    if (this.given > 0) {
      this.given = 0;
      this.opts.handover!.batchEnd();
    }
    for (;;) {
      if (Atomics.load(control, CTRL_STOP) !== 0) throw gate.die(this.stop);
      if (control[CTRL_DRAIN] !== 0 && !this.drainedListeners) {
        if (control[CTRL_DRAIN] === DRAIN_STOP) this.takeKernelQueues();
        gate.enter();
        this.drainListeners();
        gate.leave();
        Atomics.store(control, CTRL_DRAIN, DRAIN_DONE);
      }
      if (this.handoverDue()) this.takeHandedOver(now);
      // Drained listeners and handovers to report: they are the events of this call.
      if (this.synthetic.length > 0) {
        n = 0;
        break;
      }
      // Block until the guest's deadline, but wake for the idle sweep.
      // Never more than the guest asked for: (now + t) - now can round to a hair over t.
      let slice = deadline === Infinity ? -1 : Math.min(timeout, Math.max(0, Math.ceil(deadline - now)));
      if (sweepEveryMs > 0 && (slice < 0 || slice > sweepEveryMs)) slice = sweepEveryMs;
      // Log lines were suppressed: write their summary when due, even if the guest has gone quiet.
      if (logLimit.summaryDue !== Infinity) slice = logLimit.wakeForSummary(now, slice);
      // The earliest adopt deadline of a handed-over connection, and of a PROXY protocol header.
      if (this.handed.length > 0) slice = wakeBy(slice, this.handed[0]!.until - now);
      if (this.headers.length > 0) slice = wakeBy(slice, this.headers[0]!.until - now);
      // Refused once the instance is dead (a trap is final): it never blocks again.
      gate.enterWait();
      n = backend.wait(out, max, slice);
      now = time.nowMs();
      clock.nowMs = now;
      // The guest may run again from here: the watchdog measures from this tick.
      gate.leaveWait(now);
      if (Atomics.load(control, CTRL_STOP) !== 0) throw gate.die(this.stop);
      if (sweepEveryMs > 0 && now >= this.nextSweep) this.sweepIdle(now);
      // Events of connections still reading their header are the host's: served here, never reported.
      if (this.pendingHeaders.size > 0 && n > 0) n = this.serveHeaders(out, n);
      if (this.headers.length > 0) this.expireHeaders(now);
      if (this.handoverDue()) this.takeHandedOver(now);
      if (this.synthetic.length > 0) break;
      // Nothing yet (a sweep, a wake-up, an early return): only events or
      // the guest's own deadline end the call.
      if (n !== 0 || now >= deadline) break;
    }
    if (n < 0) n = 0; // an interrupted wait: report nothing
    this.stats[STAT_WAITS]++;
    this.lastReturn = now;

    // Translate (key, readiness) into (token, readiness), dropping events of
    // handles closed since they were registered (stale keys), and refresh
    // the readiness cache.
    const events = this.events;
    let count = 0;
    // A drained listener reports hang-up once (wit/tcp.wit: the guest's
    // sign that the instance is draining); accept on it says would-block.
    // A listener with connections handed over reports readable (adopt).
    const synthetic = this.synthetic;
    let taken = 0;
    while (taken < synthetic.length && count < max) {
      events[3 * count] = synthetic[taken]!;
      events[3 * count + 1] = synthetic[taken + 1]!;
      events[3 * count + 2] = synthetic[taken + 2]!;
      taken += 3;
      count++;
    }
    if (taken > 0) synthetic.splice(0, taken);
    for (let i = 0; i < n; i++) {
      const slot = table.lookup(out[2 * i]!);
      if (slot < 0 || table.registered[slot] === 0) continue;
      const ready = out[2 * i + 1]!;
      if (ready & READY_READABLE) table.readReady[slot] = 1;
      if (ready & READY_WRITABLE) table.writeReady[slot] = 1;
      if (ready & (READY_READ_CLOSED | READY_HANG_UP | READY_ERROR)) table.peerClosed[slot] = 1;
      events[3 * count] = table.tokenLo[slot]!;
      events[3 * count + 1] = table.tokenHi[slot]!;
      events[3 * count + 2] = ready;
      count++;
    }
    this.stats[STAT_EVENTS] += count;
    return count;
  }

  // ---- tcp ----------------------------------------------------------------------------

  // The calls that open or close a descriptor run inside the kill gate
  // (gate.enter() ... gate.leave(), see gate.ts), the checks before them too:
  // once the instance is dead, each throws before doing anything.
  listen(addr: SocketAddress, backlog: number): number {
    this.gate.enter();
    const r = this.listenGated(addr, backlog);
    this.gate.leave();
    if (r >= 0) this.opts.listening(addr.clone(), this.table.fds[this.table.lookup(r)]!);
    return r;
  }

  private listenGated(addr: SocketAddress, backlog: number): number {
    const { limits } = this;
    if (!limits.listen.some((allowed) => allowed.equals(addr))) {
      this.denied('listen', addr, this.listenRule);
      return fail(ErrorCode.Denied);
    }
    if (backlog === 0) return fail(ErrorCode.Invalid);
    let h = this.takeInherited(addr);
    if (h === fail(ErrorCode.Other)) {
      const fd = this.backend.listen(addr, Math.min(backlog, limits.maxBacklog), limits.sharedListen);
      h = fd < 0 ? this.other('listen', fd) : this.recordSocket(fd, KIND_LISTENER);
    }
    if (h >= 0) this.addrIndex[this.table.lookup(h)] = limits.listen.findIndex((a) => a.equals(addr));
    return h;
  }

  // The socket the previous version's instance listened on for `addr`, if it
  // handed one over and the guest has not taken it yet: recorded in the
  // table, its cell cleared in the same step (inside the gate), so that
  // exactly one record names it. fail(Other): none to take.
  private takeInherited(addr: SocketAddress): number {
    const cells = this.opts.inherited;
    if (!cells) return fail(ErrorCode.Other);
    const i = this.limits.listen.findIndex((a) => a.equals(addr));
    const fd = i < 0 ? -1 : cells[i]!;
    if (fd < 0) return fail(ErrorCode.Other);
    const h = this.table.insert(fd, KIND_LISTENER);
    if (h < 0) return fail(ErrorCode.Limit); // the cell keeps it: closed with the thread
    cells[i] = -1;
    return h;
  }

  /** Accepts one connection on listener `h`; its peer is `address` afterwards. */
  accept(h: number): number {
    const { table } = this;
    const slot = table.lookup(h);
    if (slot < 0 || (table.kind[slot] !== KIND_LISTENER && table.kind[slot] !== KIND_DRAINED)) return fail(ErrorCode.BadHandle);
    // Connections taken already (before a drain closed the listener, or whose PROXY header completed): first.
    if (this.readyQueue.size > 0) {
      const queue = this.readyQueue.get(slot);
      if (queue !== undefined && queue.length > 0) return this.handOut(queue.shift()!, slot);
    }
    // Draining: no new connections.
    if (table.kind[slot] === KIND_DRAINED) return fail(ErrorCode.WouldBlock);
    if (this.scratch !== null) return this.acceptProxied(slot);
    if (this.cachedWouldBlock(slot, READ)) return fail(ErrorCode.WouldBlock);
    this.gate.enter();
    const r = this.acceptOne(table.fds[slot]!);
    this.gate.leave();
    if (r >= 0) {
      this.stats[STAT_ACCEPTED]++;
      this.addrIndex[table.lookup(r)] = this.addrIndex[slot]!;
      return r;
    }
    if (codeOf(r) === ErrorCode.WouldBlock) this.drained(slot, READ);
    return this.other('accept', r);
  }

  connect(addr: SocketAddress): number {
    this.gate.enter();
    const r = this.connectGated(addr);
    this.gate.leave();
    return r;
  }

  private connectGated(addr: SocketAddress): number {
    if (!this.limits.connectAllowed(addr)) {
      this.denied('connect', addr, 'no outbound rule allows it');
      return fail(ErrorCode.Denied);
    }
    if (this.stats[STAT_OPEN]! >= this.limits.maxConnections) return fail(ErrorCode.Limit);
    const fd = this.backend.connect(addr);
    const h = fd < 0 ? this.other('connect', fd) : this.recordSocket(fd, KIND_STREAM);
    if (h >= 0) this.addrIndex[this.table.lookup(h)] = -1; // not accepted: never handed over
    return h;
  }

  /**
   * First half of recv: the slot of stream `h` when a read may find data,
   * else fail() (bad handle, max 0, or would-block from the readiness
   * cache). The glue then lends a buffer of recvLength(max) and calls recvInto.
   */
  recvStart(h: number, max: number): number {
    const slot = this.stream(h);
    if (slot < 0) return fail(ErrorCode.BadHandle);
    if (max === 0) return fail(ErrorCode.Invalid);
    // Drained since the last event; the next readable event sets it again.
    if (this.cachedWouldBlock(slot, READ)) return fail(ErrorCode.WouldBlock);
    return slot;
  }

  /** Bytes one recv asks the kernel for: the guest's max, within maxRecvBytes. */
  recvLength(max: number): number {
    return Math.min(max, this.limits.maxRecvBytes);
  }

  /** Second half of recv: reads up to `len` bytes into guest memory at absolute address `at`. */
  recvInto(slot: number, at: number, len: number): number {
    const { table } = this;
    const r = this.backend.recv(table.fds[slot]!, at, len);
    if (r >= 0) {
      table.active[slot] = this.clock.nowMs;
      // A short read means the socket buffer is empty: any later data
      // brings a new edge, so the next recv need not ask the kernel.
      // Not once the peer has closed: end of stream brings no new edge.
      if (r < len && r > 0 && !table.peerClosed[slot]) this.drained(slot, READ);
      this.stats[STAT_BYTES_IN] += r;
      return r;
    }
    if (codeOf(r) === ErrorCode.WouldBlock) this.drained(slot, READ);
    return this.other('recv', r);
  }

  /** Sends `len` bytes of guest memory at absolute address `at` (the glue has checked them). */
  send(h: number, at: number, len: number): number {
    const { table } = this;
    const slot = this.stream(h);
    if (slot < 0) return fail(ErrorCode.BadHandle);
    if (len === 0) return 0;
    if (this.cachedWouldBlock(slot, WRITE)) return fail(ErrorCode.WouldBlock);
    const r = this.backend.send(table.fds[slot]!, at, len);
    if (r >= 0) {
      table.active[slot] = this.clock.nowMs;
      if (r < len) this.drained(slot, WRITE);
      this.stats[STAT_BYTES_OUT] += r;
      return r;
    }
    if (codeOf(r) === ErrorCode.WouldBlock) this.drained(slot, WRITE);
    return this.other('send', r);
  }

  shutdown(h: number, how: number): number {
    const slot = this.stream(h);
    return slot < 0 ? fail(ErrorCode.BadHandle) : this.other('shutdown', this.backend.shutdown(this.table.fds[slot]!, how));
  }

  close(h: number): number {
    this.gate.enter();
    const r = this.closeGated(h);
    this.gate.leave();
    return r;
  }

  private closeGated(h: number): number {
    const { table, stats } = this;
    const slot = this.owned(h);
    if (slot < 0) return fail(ErrorCode.BadHandle);
    if (table.kind[slot] === KIND_STREAM) {
      stats[STAT_OPEN]--;
      if (stats[STAT_OPEN]! < this.limits.maxConnections) this.refusedLogged = false;
      this.proxied[slot] = undefined;
    }
    // Connections accepted on this listener that the guest has not taken yet go with it.
    if (this.readyQueue.size > 0 && table.kind[slot] !== KIND_STREAM) this.closeQueued(slot);
    if (table.kind[slot] === KIND_DRAINED) this.drainedHeard.delete(slot);
    const fd = table.remove(slot);
    if (fd >= 0) this.backend.closeSocket(fd);
    return 0;
  }

  // ---- handover ---------------------------------------------------------------------

  /**
   * handover.give: moves stream `h` (accepted here) to the new version with
   * `state` (a view of guest memory, copied here). Only while draining, and
   * only to an address the new version adopts on (CTRL_HANDOVER).
   */
  give(h: number, state: Uint8Array): number {
    const { table, stats } = this;
    const link = this.opts.handover;
    const slot = table.lookup(h);
    if (slot < 0 || table.kind[slot] !== KIND_STREAM || this.addrIndex[slot]! < 0) return fail(ErrorCode.BadHandle);
    const listen = this.addrIndex[slot]!;
    if (!link || !this.drainedListeners || (Atomics.load(this.control, CTRL_HANDOVER) & (1 << listen)) === 0) {
      return fail(ErrorCode.Denied);
    }
    if (state.length > this.limits.handoverStateBytes) {
      if (this.logLimit.admit(LOG_NOTICE)) {
        this.opts.log(
          'warn',
          'host',
          `handover: a state of ${state.length} bytes is over handover-state-bytes (${this.limits.handoverStateBytes}); that connection is not moved`,
        );
      }
      link.ended(null, false);
      return fail(ErrorCode.Limit);
    }
    const cells = link.outgoing;
    let cell = -1;
    for (let i = 0; i < cells.length; i++) {
      const c = (this.outCell + i) % cells.length;
      if (Atomics.load(cells, c) === -1) {
        cell = c;
        break;
      }
    }
    if (cell < 0) return fail(ErrorCode.Limit);
    this.outCell = (cell + 1) % cells.length;
    const copy = state.slice();
    const carried = this.proxied[slot];
    const peer = carried?.toData();
    this.gate.enter();
    const fd = table.fds[slot]!;
    if (table.registered[slot]) this.backend.deregister(fd);
    // Its cell first, then the table's record cleared: never unrecorded.
    Atomics.store(cells, cell, fd);
    table.remove(slot);
    this.addrIndex[slot] = -1;
    this.proxied[slot] = undefined;
    stats[STAT_OPEN]--;
    this.gate.leave();
    stats[STAT_GIVEN]++;
    this.given++;
    link.gave(cell, listen, copy, peer);
    return 0;
  }

  /**
   * handover.adopt: one connection handed over on the address of listener
   * `l` (a new handle; its state in adoptedState), or would-block. The
   * first call on an address opts the instance in (HandoverLink.adopting).
   */
  adopt(l: number): number {
    const { table, stats } = this;
    const link = this.opts.handover;
    const slot = table.lookup(l);
    if (slot < 0 || (table.kind[slot] !== KIND_LISTENER && table.kind[slot] !== KIND_DRAINED)) return fail(ErrorCode.BadHandle);
    const listen = this.addrIndex[slot]!;
    if (!link || listen < 0 || listen > 30) return fail(ErrorCode.WouldBlock);
    if ((this.adoptingMask & (1 << listen)) === 0) {
      this.adoptingMask |= 1 << listen;
      link.adopting(listen);
    }
    for (;;) {
      const i = this.handed.findIndex((x) => x.listen === listen);
      if (i < 0) return fail(ErrorCode.WouldBlock);
      const x = this.handed.splice(i, 1)[0]!;
      this.gate.enter();
      const fd = Atomics.load(link.incoming, x.cell);
      let h = -1;
      if (fd >= 0 && stats[STAT_OPEN]! < this.limits.maxConnections) {
        h = table.insert(fd, KIND_STREAM);
        // In the table first, then its cell cleared: never unrecorded.
        if (h >= 0) Atomics.store(link.incoming, x.cell, -1);
      }
      if (h < 0 && fd >= 0) {
        Atomics.store(link.incoming, x.cell, -1);
        this.backend.closeSocket(fd);
      }
      this.gate.leave();
      if (h < 0) {
        if (this.logLimit.admit(LOG_NOTICE)) {
          this.opts.log('warn', 'host', `handover: a connection from version ${x.from} closed: this instance is at its connection cap`);
        }
        link.ended(x.from, false);
        continue;
      }
      const s = table.lookup(h);
      stats[STAT_OPEN]++;
      stats[STAT_ADOPTED]++;
      table.active[s] = this.clock.nowMs;
      this.addrIndex[s] = listen;
      this.proxied[s] = x.peer && SocketAddress.fromData(x.peer);
      this.adoptedState = x.state;
      link.ended(x.from, true);
      return h;
    }
  }

  // Connections posted for adoption since the last look (CTRL_ADOPT_SEQ), or adopt deadlines to keep.
  private handoverDue(): boolean {
    return this.opts.handover !== undefined && (this.handed.length > 0 || Atomics.load(this.control, CTRL_ADOPT_SEQ) !== this.adoptSeq);
  }

  // Connections the supervisor handed over since the last look: queued for
  // adopt, their listener told (readable); those past their deadline closed.
  private takeHandedOver(now: number): void {
    const link = this.opts.handover!;
    // Read before the messages: a batch posted meanwhile moves the sequence again.
    this.adoptSeq = Atomics.load(this.control, CTRL_ADOPT_SEQ);
    const handed = this.handed;
    let notify = 0;
    for (const x of link.receive()) {
      handed.push({ ...x, until: now + ADOPT_DEADLINE_MS });
      notify |= 1 << x.listen;
    }
    while (handed.length > 0 && handed[0]!.until <= now) {
      const x = handed.shift()!;
      this.gate.enter();
      const fd = Atomics.exchange(link.incoming, x.cell, -1);
      if (fd >= 0) this.backend.closeSocket(fd);
      this.gate.leave();
      if (this.logLimit.admit(LOG_NOTICE)) {
        this.opts.log(
          'warn',
          'host',
          `handover: a connection from version ${x.from} was not adopted within ${ADOPT_DEADLINE_MS} ms; closed`,
        );
      }
      link.ended(x.from, false);
    }
    if (notify === 0) return;
    const { table } = this;
    for (const slot of table.openSlots()) {
      if (table.kind[slot] !== KIND_LISTENER || !table.registered[slot]) continue;
      const i = this.addrIndex[slot]!;
      if (i >= 0 && notify & (1 << i)) {
        this.synthetic.push(table.tokenLo[slot]!, table.tokenHi[slot]!, READY_READABLE);
        notify &= ~(1 << i);
      }
    }
  }

  /** At the end of the instance (inside the gate): closes the connections handed over and never adopted. */
  private closeHandedOver(): void {
    const link = this.opts.handover;
    if (!link) return;
    for (const x of this.handed) {
      const fd = Atomics.exchange(link.incoming, x.cell, -1);
      if (fd >= 0) this.backend.closeSocket(fd);
      link.ended(x.from, false);
    }
    this.handed = [];
  }

  // ---- PROXY protocol -----------------------------------------------------------------
  //
  // With limits.proxyProtocol every accepted connection starts with a PROXY
  // protocol header (sandbox/proxy-header.ts). The host reads it before the
  // guest sees the connection: a connection is KIND_PENDING (in the table,
  // so counted, recorded in the shared registry and closed with the
  // instance, but no guest call takes its handle) until its header is
  // complete, then waits in its listener's ready queue for the guest's
  // accept. A header is read without taking a byte past its end (version 1:
  // peek for the CRLF, then a recv of exactly the line; version 2: recvs of
  // exactly the fixed part, then of its length), so the client's first
  // request stays in the socket for the guest's first recv. Incomplete, the
  // connection is registered with the backend under its (unseen) handle and
  // its events are served inside wait (serveHeaders); a missing, malformed,
  // truncated, oversized or unsupported header, or one not complete within
  // proxyHeaderTimeoutMs, closes it, counted by reason (STAT_PROXY_REJECTED).

  // accept on a listener of a proxyProtocol instance: a connection whose
  // header is complete, or would-block (after taking every connection the
  // kernel has queued: their headers are read as they come, and a listener
  // with a connection ready reports readable then, so an edge-triggered
  // guest misses none).
  private acceptProxied(listenerSlot: number): number {
    const { table } = this;
    if (this.cachedWouldBlock(listenerSlot, READ)) return fail(ErrorCode.WouldBlock);
    const listener = table.handleOf(listenerSlot);
    for (let i = 0; i < REFUSE_BATCH; i++) {
      this.gate.enter();
      const r = this.acceptOne(table.fds[listenerSlot]!);
      this.gate.leave();
      if (r < 0) {
        if (codeOf(r) === ErrorCode.WouldBlock) this.drained(listenerSlot, READ);
        return this.other('accept', r);
      }
      if (this.startHeader(r, listener) === HEADER_DONE) return this.handOut(table.lookup(r), listenerSlot);
    }
    // A flood of connections: the guest retries shortly (as at the connection cap).
    return fail(ErrorCode.Limit);
  }

  // Reads the header of `h`, just accepted on `listener`: HEADER_DONE,
  // HEADER_REJECTED (closed, counted), or HEADER_INCOMPLETE: then it is
  // pending, registered under its own handle (which the guest never sees)
  // for the rest, until its deadline.
  private startHeader(h: number, listener: number): number {
    const { table } = this;
    const slot = table.lookup(h);
    table.kind[slot] = KIND_PENDING;
    this.proxied[slot] = undefined;
    const p: PendingHeader = {
      slot,
      handle: h,
      listener,
      until: this.time.nowMs() + this.limits.proxyHeaderTimeoutMs,
      bytes: null,
      n: 0,
    };
    const got = this.readHeader(p);
    if (got !== HEADER_INCOMPLETE) return got;
    if (this.backend.register(table.fds[slot]!, h, INTEREST_READABLE) < 0) return this.rejectHeader(p, 'truncated');
    table.registered[slot] = 1;
    this.pendingHeaders.set(slot, p);
    this.headers.push(p);
    return HEADER_INCOMPLETE;
  }

  // A connection with its header read becomes the guest's: a stream, its
  // peer (the header's client, or the socket's own) in `address`.
  private handOut(slot: number, listenerSlot: number): number {
    const { table } = this;
    table.kind[slot] = KIND_STREAM;
    table.active[slot] = this.clock.nowMs;
    this.addrIndex[slot] = this.addrIndex[listenerSlot]!;
    this.stats[STAT_ACCEPTED]++;
    const carried = this.proxied[slot];
    if (carried !== undefined) this.address.copyFrom(carried);
    else this.backend.peerAddress(table.fds[slot]!, this.address);
    return table.handleOf(slot);
  }

  // Reads what there is of `p`'s header. Done: the connection is no longer
  // registered with the backend, and its carried address is recorded.
  private readHeader(p: PendingHeader): number {
    const { table } = this;
    const backend = this.backend;
    const work = this.scratch!;
    const at = this.scratchAt;
    const fd = table.fds[p.slot]!;
    for (;;) {
      const n = p.n;
      if (n > 0) work.set(p.bytes!.subarray(0, n));
      const ask = parseProxyHeader(work, n);
      if (ask.state !== 'need') return this.rejectHeader(p, ask.state === 'bad' ? ask.reason : 'malformed');
      const r = ask.peek ? backend.peek!(fd, at + n, ask.upTo) : backend.recv(fd, at + n, ask.upTo);
      if (r < 0) {
        if (codeOf(r) !== ErrorCode.WouldBlock) return this.rejectHeader(p, 'truncated');
        if (table.registered[p.slot]) backend.drained?.(fd, INTEREST_READABLE);
        return HEADER_INCOMPLETE;
      }
      if (r === 0) return this.rejectHeader(p, 'truncated');
      const got = parseProxyHeader(work, n + r);
      if (got.state === 'bad') return this.rejectHeader(p, got.reason);
      // What was peeked is taken now: up to the header's end, or all of it
      // when the header goes on past it (none of it is the client's then).
      const take = got.state === 'done' ? got.length - n : r;
      if (ask.peek && backend.recv(fd, at + n, take) !== take) return this.rejectHeader(p, 'truncated');
      if (got.state === 'done') {
        this.proxied[p.slot] = got.source ?? undefined;
        this.pendingHeaders.delete(p.slot);
        p.bytes = null;
        if (table.registered[p.slot]) {
          backend.deregister(fd);
          table.registered[p.slot] = 0;
        }
        return HEADER_DONE;
      }
      p.bytes ??= new Uint8Array(PROXY_MAX_BYTES);
      p.bytes.set(work.subarray(0, n + r));
      p.n = n + r;
      // Read again even after a short read: only would-block proves the
      // socket empty. The peer's end of stream may have come with these
      // bytes, and an edge-triggered poller reports it once: stopping here
      // would wait for an edge that never comes (found by truncated.test.ts).
    }
  }

  // Closes a connection whose header was refused; counted by reason, one log line (within the rate).
  private rejectHeader(p: PendingHeader, reason: ProxyReason): number {
    const { table, stats } = this;
    const peer = this.logLimit.admit(LOG_NOTICE) ? new SocketAddress() : null;
    if (peer) this.backend.peerAddress(table.fds[p.slot]!, peer);
    // Counted before the close: whoever sees the close sees the count.
    stats[STAT_PROXY_REJECTED + PROXY_REASONS.indexOf(reason)]++;
    this.dropPending(p.slot);
    if (peer) this.opts.log('warn', 'host', `PROXY protocol: a connection from ${peer} closed before the guest saw it: ${reason} header`);
    return HEADER_REJECTED;
  }

  // Closes a connection the guest has not seen (pending or queued); `gated`: the caller is inside the kill gate.
  private dropPending(slot: number, gated = false): void {
    const { table } = this;
    this.pendingHeaders.delete(slot);
    this.proxied[slot] = undefined;
    if (!gated) this.gate.enter();
    const fd = table.remove(slot);
    if (fd >= 0) this.backend.closeSocket(fd);
    if (!gated) this.gate.leave();
    this.stats[STAT_OPEN]--;
    if (this.stats[STAT_OPEN]! < this.limits.maxConnections) this.refusedLogged = false;
  }

  // Serves the events of connections reading their header (out: (key,
  // readiness) pairs) and returns how many of the `n` events are left, moved to the front.
  private serveHeaders(out: Uint32Array, n: number): number {
    const { table } = this;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const key = out[2 * i]!;
      const slot = table.lookup(key);
      const p = slot >= 0 && table.kind[slot] === KIND_PENDING ? this.pendingHeaders.get(slot) : undefined;
      if (p === undefined) {
        out[2 * kept] = key;
        out[2 * kept + 1] = out[2 * i + 1]!;
        kept++;
        continue;
      }
      if (this.readHeader(p) !== HEADER_DONE) continue;
      // Its listener is told (readable), once per wait; a listener closed
      // meanwhile takes it with it. A drained one still hands out what
      // completes during the drain, if its guest hears of it.
      const l = table.lookup(p.listener);
      const heard = l >= 0 && (table.kind[l] === KIND_LISTENER || this.drainedHeard.has(l));
      if (!heard) {
        this.dropPending(slot);
        continue;
      }
      let queue = this.readyQueue.get(l);
      if (queue === undefined) this.readyQueue.set(l, (queue = []));
      queue.push(slot);
      if ((table.registered[l] || this.drainedHeard.has(l)) && !this.notified(l)) {
        this.synthetic.push(table.tokenLo[l]!, table.tokenHi[l]!, READY_READABLE);
      }
    }
    return kept;
  }

  // Whether listener `l`'s readable is already among the events to report.
  private notified(l: number): boolean {
    const { table, synthetic } = this;
    for (let i = 0; i < synthetic.length; i += 3) {
      if (synthetic[i] === table.tokenLo[l] && synthetic[i + 1] === table.tokenHi[l] && synthetic[i + 2] === READY_READABLE) return true;
    }
    return false;
  }

  // Closes the connections whose header is overdue (and forgets entries of connections done since).
  private expireHeaders(now: number): void {
    const headers = this.headers;
    let i = 0;
    while (i < headers.length) {
      const p = headers[i]!;
      if (this.pendingHeaders.get(p.slot) === p) {
        if (p.until > now) break;
        this.rejectHeader(p, 'timeout');
      }
      i++;
    }
    if (i > 0) headers.splice(0, i);
  }

  // Closes the connections queued on listener `slot` (its handle is going away); inside the kill gate.
  private closeQueued(slot: number): void {
    const queue = this.readyQueue.get(slot);
    if (queue === undefined) return;
    this.readyQueue.delete(slot);
    for (const s of queue) this.dropPending(s, true);
  }

  /** The local (or, of a stream, the peer's) address of `h` into `address`. */
  addressOf(h: number, ofPeer: boolean): number {
    const slot = ofPeer ? this.stream(h) : this.owned(h);
    if (slot < 0) return fail(ErrorCode.BadHandle);
    // PROXY protocol: the client the header named, not the proxy.
    if (ofPeer && this.proxied[slot] !== undefined) {
      this.address.copyFrom(this.proxied[slot]!);
      return 0;
    }
    const fd = this.table.fds[slot]!;
    const r = ofPeer ? this.backend.peerAddress(fd, this.address) : this.backend.localAddress(fd, this.address);
    return this.other(ofPeer ? 'peer-address' : 'local-address', r);
  }

  // ---- metrics ------------------------------------------------------------------------

  metricDefine(kind: number, name: string, help: string, labels: readonly string[], buckets: ArrayLike<number>): number {
    return this.opts.metrics ? this.opts.metrics.define(kind, name, help, labels, buckets) : fail(ErrorCode.Limit);
  }

  metricSeries(m: number, values: readonly string[]): number {
    return this.opts.metrics ? this.opts.metrics.series(m, values) : fail(ErrorCode.BadHandle);
  }

  metricReport(u32: Uint32Array, f64: Float64Array, at: number, count: number): number {
    return this.opts.metrics ? this.opts.metrics.report(u32, f64, at, count) : count === 0 ? 0 : fail(ErrorCode.BadHandle);
  }

  /** The metrics cap refused a definition: said once per incarnation (within the log rate). */
  metricCapReached(cap: number): void {
    if (this.metricCapLogged) return;
    this.metricCapLogged = true;
    if (this.logLimit.admit(LOG_NOTICE)) {
      this.opts.log('warn', 'host', `metrics: series cap reached (metric-series ${cap}); further definitions get limit`);
    }
  }

  // One loop turn of `seconds` into the histogram (sandbox/shared.ts STAT_TURN).
  private turn(seconds: number): void {
    observe(this.stats, STAT_TURN, TURN_BOUNDS, STAT_TURN_SUM, seconds);
  }

  // ---- log ----------------------------------------------------------------------------

  /** Whether a guest log line may be written now (asked before its text is decoded). */
  admitGuestLine(): boolean {
    return this.logLimit.admit(LOG_GUEST);
  }

  guestLine(level: LogLevel, text: string): void {
    this.opts.log(level, 'guest', text);
  }

  // ---- the rules' internals -------------------------------------------------------------

  // The slot of a handle the guest may use: any but a connection the host still holds (KIND_PENDING).
  private owned(h: number): number {
    const slot = this.table.lookup(h);
    return slot >= 0 && this.table.kind[slot] !== KIND_PENDING ? slot : -1;
  }

  private stream(h: number): number {
    const slot = this.table.lookup(h);
    return slot >= 0 && this.table.kind[slot] === KIND_STREAM ? slot : -1;
  }

  private setInterest(slot: number, tokenLo: number, tokenHi: number, interest: number, again: boolean): number {
    const { table } = this;
    if (interest === 0) return fail(ErrorCode.Invalid);
    if (again !== (table.registered[slot] === 1)) return fail(ErrorCode.Closed);
    const fd = table.fds[slot]!;
    const key = table.handleOf(slot);
    const r = again ? this.backend.reregister(fd, key, interest) : this.backend.register(fd, key, interest);
    if (r < 0) return r;
    table.registered[slot] = 1;
    table.interest[slot] = interest;
    table.tokenLo[slot] = tokenLo;
    table.tokenHi[slot] = tokenHi;
    // Unknown until the OS says otherwise; the re-arm may also bring an event.
    table.readReady[slot] = 1;
    table.writeReady[slot] = 1;
    return 0;
  }

  // The readiness cache: a handle registered for a direction that was seen
  // drained (would-block, or a short read or write) since its last event in
  // that direction cannot succeed, and its next event is sure to come.
  private cachedWouldBlock(slot: number, direction: number): boolean {
    const { table } = this;
    if (!table.registered[slot]) return false;
    return direction === READ
      ? (table.interest[slot]! & INTEREST_READABLE) !== 0 && !table.readReady[slot]
      : (table.interest[slot]! & INTEREST_WRITABLE) !== 0 && !table.writeReady[slot];
  }

  // A direction was found drained: remembered until the next event, and
  // told to the backend, which re-arms where the OS will not on its own
  // (mio's do_io: poll(2) and IOCP re-arm a drained direction).
  private drained(slot: number, direction: number): void {
    const { table } = this;
    if (direction === READ) table.readReady[slot] = 0;
    else table.writeReady[slot] = 0;
    if (table.registered[slot]) this.backend.drained?.(table.fds[slot]!, direction === READ ? INTEREST_READABLE : INTEREST_WRITABLE);
  }

  // Adds a new socket to the table, or closes it when the table is full.
  // Like everything that opens or closes a descriptor here, it runs inside
  // the kill gate (gate.enter() ... gate.leave(), see gate.ts): the socket
  // and its record in the shared registry come and go together.
  private recordSocket(fd: number, kind: number): number {
    const { table } = this;
    const h = table.insert(fd, kind);
    if (h < 0) {
      table.abandon();
      this.backend.closeSocket(fd);
      return fail(ErrorCode.Limit);
    }
    if (kind === KIND_STREAM) {
      this.stats[STAT_OPEN]++;
      table.active[table.lookup(h)] = this.clock.nowMs;
    }
    return h;
  }

  // Accepts one connection within the policy's connection cap. At the cap,
  // connections are accepted and closed at once (the client sees the close,
  // the backlog does not fill up) and the guest sees would-block. A flood is
  // closed REFUSE_BATCH at a time: then the guest gets `limit` (retry
  // shortly), so one accept call never holds the instance for long.
  private acceptOne(listener: number): number {
    const { table, backend, stats } = this;
    const maxConnections = this.limits.maxConnections;
    for (let refused = 0; refused < REFUSE_BATCH; refused++) {
      const fd = backend.accept(listener, this.address);
      if (fd < 0) return fd;
      if (stats[STAT_OPEN]! < maxConnections) return this.recordSocket(fd, KIND_STREAM);
      table.abandon();
      backend.closeSocket(fd);
      stats[STAT_REFUSED]++;
      if (!this.refusedLogged) {
        this.refusedLogged = true;
        if (this.logLimit.admit(LOG_NOTICE)) {
          this.opts.log(
            'warn',
            'host',
            `connection cap reached (maxConnections ${maxConnections}): closing new connections until some end`,
          );
        }
      }
    }
    return fail(ErrorCode.Limit);
  }

  // An OS failure the errno table could not name: logged (within the rate).
  private other(op: string, r: number): number {
    if (r < 0 && codeOf(r) === ErrorCode.Other && this.logLimit.admit(LOG_OS_ERROR)) {
      this.opts.log('warn', 'host', `tcp.${op}: unexpected OS error ${this.backend.lastOsError()}`);
    }
    return r;
  }

  private denied(op: 'listen' | 'connect', addr: SocketAddress, rule: string): void {
    if (this.logLimit.admit(LOG_DENIAL)) this.opts.log('warn', 'host', `denied: ${op} ${addr} (${rule})`);
  }

  // Shut down (both ways) every stream without traffic for idleTimeoutMs.
  // The guest sees end of stream / hang-up on its next wait and closes the handle.
  private sweepIdle(now: number): void {
    const { table, backend, stats } = this;
    const idleMs = this.limits.idleTimeoutMs;
    this.nextSweep = now + this.sweepEveryMs;
    for (const slot of table.openSlots()) {
      if (table.kind[slot] !== KIND_STREAM || table.idleShut[slot] || now - table.active[slot]! < idleMs) continue;
      table.idleShut[slot] = 1;
      backend.shutdown(table.fds[slot]!, 2);
      stats[STAT_IDLE_CLOSED]++;
    }
  }

  // Draining: close this instance's descriptor of every listener (no new
  // connections here), keep the handles valid; open streams go on. A
  // registered listener reports hang-up at the next wait (accept on it says
  // would-block, as for any listener with nothing pending, so that a guest
  // that knows nothing of draining sees nothing new): the guest's sign to
  // finish what it serves (the SDK's draining mode). Only this descriptor is closed: on a reload the socket
  // lives on in the new version's instance (PluginServer.reload), so no
  // socket leaves its SO_REUSEPORT group and no queued connection is reset.
  // It closes descriptors: called inside the kill gate.
  private drainListeners(): void {
    const { table } = this;
    this.drainedListeners = true;
    // Connections already taken from the kernel (a PROXY header read, or
    // takeKernelQueues) stay queued on their listener for the guest's
    // accept, which it is told of before the hang-up; those whose header is
    // still coming are handed out as it completes (within its deadline).
    for (const slot of table.openSlots()) {
      if (table.kind[slot] !== KIND_LISTENER) continue;
      const fd = table.fds[slot]!;
      // Deregistered first: a poller watches the open socket, not the
      // descriptor (epoll), and the socket outlives this descriptor.
      if (table.registered[slot]) {
        this.backend.deregister(fd);
        if ((this.readyQueue.get(slot)?.length ?? 0) > 0) this.synthetic.push(table.tokenLo[slot]!, table.tokenHi[slot]!, READY_READABLE);
        this.synthetic.push(table.tokenLo[slot]!, table.tokenHi[slot]!, READY_HANG_UP);
        this.drainedHeard.add(slot);
      } else {
        // Nobody will hear of them: closed with the listener, as before.
        this.closeQueued(slot);
      }
      table.fds[slot] = NO_FD;
      table.kind[slot] = KIND_DRAINED;
      table.registered[slot] = 0;
      this.backend.closeSocket(fd);
    }
  }

  // A stop (DRAIN_STOP), before the listeners close: takes every connection
  // the kernel has queued on them (closing a listener resets those: the
  // client had its handshake, and a proxy in front has sent it a request)
  // into the listener's ready queue, for the guest to accept before the
  // hang-up. Bounded by the backlog and the connection cap (acceptOne
  // closes what is over it, counted as refused). With proxyProtocol each
  // header is read at once; one not complete yet is pending like any other
  // and handed out when it completes. A connection that completes its
  // handshake between the last accept and the close is still reset: the
  // window is this call.
  private takeKernelQueues(): void {
    const { table } = this;
    for (const l of table.openSlots()) {
      if (table.kind[l] !== KIND_LISTENER || !table.registered[l]) continue;
      const listener = table.handleOf(l);
      let queue = this.readyQueue.get(l);
      for (let i = 0; i < this.limits.maxBacklog; i++) {
        this.gate.enter();
        const r = this.acceptOne(table.fds[l]!);
        this.gate.leave();
        if (r < 0) break;
        if (this.scratch !== null) {
          if (this.startHeader(r, listener) !== HEADER_DONE) continue; // pending (handed out when complete) or refused
        }
        const slot = table.lookup(r);
        if (this.scratch === null) table.kind[slot] = KIND_PENDING;
        if (queue === undefined) this.readyQueue.set(l, (queue = []));
        queue.push(slot);
      }
    }
  }

  /** At the end of the instance (inside the gate): closes what the guest left open. */
  closeAll(): void {
    const { table } = this;
    this.closeHandedOver();
    for (const slot of table.openSlots()) {
      const fd = table.remove(slot);
      if (fd >= 0) this.backend.closeSocket(fd);
    }
    this.stats[STAT_OPEN] = 0;
  }
}
