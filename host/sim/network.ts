/**
 * The simulated network: a backend (host/backends/backend.ts's contract)
 * that keeps every socket in memory, and the client side a scenario drives.
 *
 *   listeners   the plugin's (tcp.listen) and the scenario's (net.listenAt,
 *               for the plugin's outbound connects); the plugin's have a
 *               bounded backlog
 *   connections two pipes (one per direction); what the plugin sends is
 *               bounded (SimOptions.pipeBytes: a full pipe says would-block),
 *               what a client writes is queued whole; a pipe carries bytes,
 *               then its writer's FIN; a reset empties both, and a close
 *               with bytes unread is a reset, as TCP's is
 *   readiness   edge-triggered: every change that can make a socket ready
 *               (bytes in, room out, FIN, reset, a queued connection, a
 *               register) queues an event for it, reported by the next wait
 *   time        virtual (clock.ts): it moves only in wait, to the plugin's
 *               deadline, a pending simulation timer or the end of the
 *               scenario's sleep, whichever comes first
 *
 * Faults (faults.ts) are decided here, at each opportunity, from the seed's
 * streams (random.ts: one decides, another says what the fault does); each
 * one applied is recorded with its step (backend calls, client actions and
 * the turns of a wait, counted) and the connection it hit. Everything that
 * happens is written to the transcript, which is therefore the same, byte
 * for byte, for the same plugin, scenario, seed and faults.
 */
import { SocketAddress } from '../backends/address.js';
import { fail, type Backend } from '../backends/backend.js';
import {
  ErrorCode,
  INTEREST_READABLE,
  INTEREST_WRITABLE,
  READY_ERROR,
  READY_HANG_UP,
  READY_READABLE,
  READY_READ_CLOSED,
  READY_WRITABLE,
} from '../generated/contract.js';
import { copyFromAddress, copyToAddress } from '../ffi/native-memory.js';
import type { Random } from './random.js';
import type { VirtualClock } from './clock.js';
import type { AppliedFault, FaultKind, FaultPlan, FaultSetting } from './faults.js';

/** Bytes a pipe holds before its writer would block (SimOptions.pipeBytes). */
export const DEFAULT_PIPE_BYTES = 64 * 1024;
/** Connections a listener queues before a connect is refused. */
const MAX_BACKLOG = 128;
const FIRST_SOCKET = 3;
/** Turns of one wait's loop before the run is failed (a backstop: the driver's guards come first). */
const MAX_TURNS_PER_WAIT = 1_000_000;

/** Bytes of a transcript line's data shown before it is cut. */
const SHOW_BYTES = 120;

/** How bytes are shown in a transcript: a JSON string of their latin1 text, cut at SHOW_BYTES. */
export function showBytes(bytes: Uint8Array): string {
  const text = JSON.stringify(Buffer.from(bytes.subarray(0, SHOW_BYTES)).toString('latin1'));
  return bytes.length > SHOW_BYTES ? `${text}…` : text;
}

/** One direction of a connection. */
class Pipe {
  /** The bytes in the pipe, in chunks (a write is one chunk), the first from `head` on. */
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Bytes in the pipe. */
  length = 0;
  /** The writer shut down its side: after its bytes, end of stream. */
  finished = false;
  /** The reader closed: what is written from now on draws a reset. */
  readerGone = false;
  /** The writer found it full (would-block or a short send): room brings it an edge. */
  writerBlocked = false;
  /** A stalled reader: the capacity is held at this many bytes until the stall ends (-1: none). */
  stalledAt = -1;

  constructor(readonly capacity: number) {}

  room(): number {
    const cap = this.stalledAt >= 0 ? Math.min(this.capacity, this.stalledAt) : this.capacity;
    return Math.max(0, cap - this.length);
  }

  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.chunks.push(bytes.slice());
    this.length += bytes.length;
  }

  /** Takes the first `n` bytes (n <= length). */
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let at = 0; at < n; ) {
      const chunk = this.chunks[0]!;
      const k = Math.min(chunk.length - this.head, n - at);
      out.set(chunk.subarray(this.head, this.head + k), at);
      at += k;
      this.head += k;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    return out;
  }

  /** Drops every byte (a reset). */
  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.length = 0;
  }
}

/** One end of a connection: the plugin's (it has a socket number) or a client's. */
export class End {
  /** The plugin's socket for this end; -1: a client's end. */
  fd = -1;
  client: SimClient | null = null;
  /** The peer reset the connection: recv and send fail with reset. */
  reset = false;
  /** A connect that failed (refused): its error, from recv and send. */
  error: ErrorCode | null = null;
  /** False while a slow connect is in progress. */
  connected = true;
  readShut = false;
  writeShut = false;
  /** The plugin accepted this end (a listener's side of a client's connection). */
  accepted = false;
  /** Would-blocks still to come in a storm (the wouldblock fault), each followed by a new edge. */
  storm = 0;

  constructor(
    readonly conn: Connection,
    readonly side: 0 | 1,
    readonly local: SocketAddress,
  ) {}

  get in(): Pipe {
    return this.conn.pipes[1 - this.side]!;
  }

  get out(): Pipe {
    return this.conn.pipes[this.side]!;
  }

  get peer(): End {
    return this.conn.ends[1 - this.side]!;
  }
}

export class Connection {
  /** pipes[0] carries end 0's bytes to end 1, pipes[1] the other way. */
  readonly pipes: [Pipe, Pipe];
  readonly ends: [End, End];
  /** Bytes moved either way (a reset fault waits for traffic). */
  traffic = 0;

  constructor(
    readonly id: number,
    pipeBytes: number,
    a: SocketAddress,
    b: SocketAddress,
  ) {
    this.pipes = [new Pipe(pipeBytes), new Pipe(pipeBytes)];
    this.ends = [new End(this, 0, a), new End(this, 1, b)];
  }
}

interface Listener {
  readonly kind: 'listener';
  /** Where it listens (port 0 resolved). */
  readonly addr: SocketAddress;
  /** Where the plugin asked to listen (port 0 as asked). */
  readonly asked: SocketAddress;
  readonly backlog: End[];
  readonly max: number;
}

interface Stream {
  readonly kind: 'stream';
  readonly end: End;
}

/** The scenario's listener, for the plugin's outbound connects: it accepts every connection as a client. */
export class SimListener {
  readonly accepted: SimClient[] = [];
  constructor(readonly addr: SocketAddress) {}
}

/**
 * A scenario's end of a connection. Writes are queued at once (the client's
 * own buffer never fills); what the plugin sends is read into `received`
 * whenever the plugin waits, unless a stall holds it back.
 */
export class SimClient {
  /** What was received and not yet taken (take()), one chunk per delivery. */
  private chunks: Uint8Array[] = [];
  /** Everything ever received, as latin1 text. */
  text = '';

  constructor(
    private readonly net: SimNetwork,
    readonly end: End,
  ) {}

  /** The connection's number (the transcript's #n). */
  get id(): number {
    return this.end.conn.id;
  }

  /** The plugin shut down its side and everything it sent has been received. */
  get ended(): boolean {
    return this.end.in.finished && this.end.in.length === 0;
  }

  /** The plugin has accepted the connection. */
  get accepted(): boolean {
    return this.end.peer.accepted;
  }

  /** The plugin accepted the connection and has closed its socket since. */
  get closedByPlugin(): boolean {
    return this.end.peer.accepted && this.end.peer.fd < 0;
  }

  /** The connection was reset (by the plugin's side, or by a reset fault). */
  get wasReset(): boolean {
    return this.end.reset;
  }

  /** The connect was refused (nothing listens there, or the listener's backlog was full). */
  get refused(): boolean {
    return this.end.error === ErrorCode.Refused;
  }

  write(data: string | Uint8Array): void {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    this.net.clientWrite(this, bytes);
  }

  /** Half-close: no more writes; the plugin reads end of stream after what was written. */
  shutdown(): void {
    this.net.clientShutdown(this);
  }

  /** Closes both directions. */
  close(): void {
    this.net.clientClose(this);
  }

  /** Resets the connection (the plugin's recv and send fail with reset). */
  reset(): void {
    this.net.clientReset(this);
  }

  /** Takes (and forgets) what has been received since the last take(). */
  take(): Buffer {
    const out = Buffer.concat(this.chunks);
    this.chunks = [];
    return out;
  }

  /** Received bytes are appended here by the network. */
  deliver(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.text += Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  }
}

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

export interface SimNetworkOptions {
  /** Whether a fault strikes (its rate's draws). */
  readonly decisions: Random;
  /** What a fault does once it strikes (sizes, delays, which socket). */
  readonly random: Random;
  readonly clock: VirtualClock;
  readonly faults: FaultPlan;
  /** Bytes each direction of a connection holds (default DEFAULT_PIPE_BYTES). */
  readonly pipeBytes?: number;
  /** Writes one transcript line. */
  readonly record: (line: string) => void;
}

/** What drives the network's wait while the plugin has nothing to do (simulate.ts). */
export interface SimDriver {
  /** Virtual time the scenario sleeps until (null: it runs whenever the plugin goes quiet). */
  sleepUntil: number | null;
  /** The simulation is over: wait returns at once (the host then finds the stop word set). */
  readonly stopping: boolean;
  /** The plugin is quiet (nothing ready, no simulation timer pending): run the scenario to its next yield. */
  quiet(): void;
  /** Each wait calls this; it ends the run when the plugin has run too long without going quiet. */
  step(): void;
  /** Ends the run as a failure (the stop word is set; wait returns). */
  fail(why: string): void;
}

export class SimNetwork {
  readonly applied: AppliedFault[] = [];
  /**
   * Steps so far: backend calls, client actions, and within a wait each turn,
   * timer and delivery to the clients. What a fault schedule counts (the
   * transcript's first column).
   */
  steps = 0;
  driver: SimDriver | null = null;

  private readonly decisions: Random;
  private readonly random: Random;
  private readonly clock: VirtualClock;
  private readonly plan: FaultPlan;
  private readonly pipeBytes: number;
  private readonly record: (line: string) => void;
  private readonly sockets = new Map<number, Listener | Stream>();
  private readonly registered = new Map<number, { key: number; interest: number }>();
  /** Events to report, by socket, in the order they arose. */
  private readonly pending = new Map<number, number>();
  private readonly scenarioListeners: SimListener[] = [];
  private readonly clients: SimClient[] = [];
  private timers: Timer[] = [];
  private timerSeq = 0;
  private nextConn = 1;
  private nextPort = 30000;
  /** Per kind: the index of the next scheduled step not yet used. */
  private readonly scheduleAt = new Map<string, number>();

  constructor(opts: SimNetworkOptions) {
    this.decisions = opts.decisions;
    this.random = opts.random;
    this.clock = opts.clock;
    this.plan = opts.faults;
    this.pipeBytes = opts.pipeBytes ?? DEFAULT_PIPE_BYTES;
    this.record = opts.record;
  }

  // ---- transcript and faults --------------------------------------------------------

  /** Writes a transcript line stamped with the step and the virtual time. */
  note(text: string): void {
    this.record(`${String(this.steps).padStart(6)} ${this.clock.nowMs().toFixed(3).padStart(11)}  ${text}`);
  }

  private setting(kind: FaultKind, conn: number): FaultSetting | undefined {
    return this.plan.perConnection[conn]?.[kind] ?? this.plan.global[kind];
  }

  /** Whether `kind` strikes now on connection `conn` (0: none in particular); records it if so. */
  private fault(kind: FaultKind, conn: number, detail: () => string): boolean {
    const s = this.setting(kind, conn);
    if (s === undefined) return false;
    let hit: boolean;
    if ('rate' in s) hit = this.decisions.chance(s.rate);
    else {
      // A connection's own schedule counts on that connection; the global one once for all.
      const key = this.plan.perConnection[conn]?.[kind] !== undefined ? `${kind}#${conn}` : kind;
      const i = this.scheduleAt.get(key) ?? 0;
      hit = i < s.at.length && this.steps >= s.at[i]!;
      if (hit) this.scheduleAt.set(key, i + 1);
    }
    if (hit) {
      const text = detail();
      this.applied.push({ step: this.steps, kind, conn, detail: text });
      this.note(`fault ${kind}${conn > 0 ? ` #${conn}` : ''}: ${text}`);
    }
    return hit;
  }

  private after(ms: number, run: () => void): void {
    this.timers.push({ at: this.clock.nowMs() + ms, seq: this.timerSeq++, run });
    this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  // ---- readiness --------------------------------------------------------------------

  private level(sock: Listener | Stream): number {
    if (sock.kind === 'listener') return sock.backlog.length > 0 ? READY_READABLE : 0;
    const e = sock.end;
    if (e.error !== null || e.reset) return READY_READABLE | READY_WRITABLE | READY_READ_CLOSED | READY_HANG_UP | READY_ERROR;
    if (!e.connected) return 0;
    let bits = 0;
    if (e.in.length > 0 || e.in.finished || e.readShut) bits |= READY_READABLE;
    if (e.in.finished || e.readShut) bits |= READY_READ_CLOSED;
    if (e.writeShut || e.out.room() > 0) bits |= READY_WRITABLE;
    if ((e.in.finished || e.readShut) && (e.writeShut || e.out.readerGone)) bits |= READY_HANG_UP;
    return bits;
  }

  /** Something changed for the plugin's end `e` (or listener `fd`): an edge, now or (a late fault) later. */
  private edge(fd: number, force = 0): void {
    if (fd < 0) return;
    const sock = this.sockets.get(fd);
    if (sock === undefined || !this.registered.has(fd)) return;
    const conn = sock.kind === 'stream' ? sock.end.conn.id : 0;
    if (force === 0 && this.fault('late', conn, () => `an event of socket ${fd} held back`)) {
      // For this socket only: a closed socket's late events go with it, as a kernel's would.
      this.after(this.random.int(1, 50), () => {
        if (this.sockets.get(fd) === sock) this.edge(fd);
      });
      return;
    }
    const bits = force | this.level(sock);
    if (bits !== 0) this.pending.set(fd, (this.pending.get(fd) ?? 0) | bits);
  }

  private edgeOf(e: End): void {
    if (e.fd >= 0) this.edge(e.fd);
  }

  /** Delivers to the clients what the plugin sent (unless stalled); room for the plugin brings it an edge. */
  private deliver(): void {
    for (const c of this.clients) {
      const pipe = c.end.in;
      if (pipe.stalledAt < 0 && pipe.length > 0) {
        const bytes = pipe.take(pipe.length);
        c.deliver(bytes);
        this.note(`#${c.id} client got ${bytes.length} ${showBytes(bytes)}`);
      }
      // Room again (bytes taken, or a stall that found the buffer empty ended): the writer's edge.
      if (pipe.writerBlocked && pipe.room() > 0) {
        pipe.writerBlocked = false;
        this.edgeOf(c.end.peer);
      }
    }
  }

  // ---- the backend ------------------------------------------------------------------

  /** The Backend the instance's host runs on. */
  backend(): Backend {
    const b: Backend = {
      name: 'sim',
      ownDescriptors: [],
      wakeTarget: 0,
      register: (sock, key, interest) => this.register(sock, key, interest, false),
      reregister: (sock, key, interest) => this.register(sock, key, interest, true),
      deregister: (sock) => {
        this.steps++;
        if (!this.registered.delete(sock)) return fail(ErrorCode.Closed);
        this.pending.delete(sock);
        return 0;
      },
      wait: (out, max, timeoutMs) => this.wait(out, max, timeoutMs),
      close: () => {},
      listen: (addr, backlog) => this.listen(addr, backlog),
      accept: (l, peer) => this.accept(l, peer),
      connect: (addr) => this.connect(addr),
      recv: (sock, ptr, len) => this.recv(sock, ptr, len),
      send: (sock, ptr, len) => this.send(sock, ptr, len),
      shutdown: (sock, how) => this.shutdown(sock, how),
      closeSocket: (sock) => this.closeSocket(sock),
      localAddress: (sock, out) => this.address(sock, out, false),
      peerAddress: (sock, out) => this.address(sock, out, true),
      lastOsError: () => 'none (simulated network)',
    };
    return b;
  }

  /** The lowest free socket number, as POSIX gives a new descriptor: a closed socket's number comes back. */
  private newSocketNumber(): number {
    let fd = FIRST_SOCKET;
    while (this.sockets.has(fd)) fd++;
    return fd;
  }

  private register(sock: number, key: number, interest: number, again: boolean): number {
    this.steps++;
    if (!this.sockets.has(sock)) return fail(ErrorCode.BadHandle);
    if (this.registered.has(sock) !== again) return fail(ErrorCode.Closed);
    this.registered.set(sock, { key, interest });
    this.pending.delete(sock);
    this.edge(sock);
    return 0;
  }

  private wait(out: Uint32Array, max: number, timeoutMs: number): number {
    this.steps++;
    const clock = this.clock;
    const driver = this.driver;
    driver?.step();
    if (this.fault('clock-jump', 0, () => 'wall and monotonic clocks jump')) {
      const wall = this.random.int(-3_600_000, 3_600_000);
      const mono = this.random.int(1, 500);
      clock.jump(wall, mono);
      this.note(`clock jump: wall ${wall >= 0 ? '+' : ''}${wall} ms, monotonic +${mono} ms`);
    }
    if (this.registered.size > 0 && this.fault('spurious', 0, () => 'an event with nothing new')) {
      const fds = [...this.registered.keys()];
      const fd = fds[this.random.int(0, fds.length - 1)]!;
      this.note(`spurious event for socket ${fd}`);
      const { interest } = this.registered.get(fd)!;
      this.edge(fd, (interest & INTEREST_READABLE ? READY_READABLE : 0) | (interest & INTEREST_WRITABLE ? READY_WRITABLE : 0));
    }
    const deadline = timeoutMs < 0 ? Infinity : clock.nowMs() + timeoutMs;
    for (let turns = 0; ; turns++) {
      // Each turn fires a timer, moves time or runs the scenario; the driver's
      // guards end a run long before this, so this is a backstop.
      if (turns === MAX_TURNS_PER_WAIT && driver !== null) driver.fail(`one wait took ${MAX_TURNS_PER_WAIT} turns`);
      // A step each (a turn after the first, a timer, the clients' reads): a
      // schedule's step then names one opportunity, not several.
      if (turns > 0) this.steps++;
      while (this.timers.length > 0 && this.timers[0]!.at <= clock.nowMs()) {
        this.steps++;
        this.timers.shift()!.run();
      }
      this.steps++;
      this.deliver();
      const n = this.collect(out, max);
      if (n > 0 || timeoutMs === 0 || driver === null || driver.stopping) return n;
      const sleep = driver.sleepUntil;
      const timer = this.timers.length > 0 ? this.timers[0]!.at : Infinity;
      if (sleep === null && timer === Infinity) {
        // Quiet: the scenario's turn. It may write, connect, close, sleep or end.
        driver.quiet();
        continue;
      }
      const wake = Math.min(deadline, timer, sleep ?? Infinity);
      clock.advanceTo(wake);
      if (sleep !== null && clock.nowMs() >= sleep) driver.sleepUntil = null;
      if (clock.nowMs() >= deadline) return 0;
    }
  }

  private collect(out: Uint32Array, max: number): number {
    let n = 0;
    for (const [fd, bits] of this.pending) {
      if (n === max) break;
      this.pending.delete(fd);
      const reg = this.registered.get(fd);
      if (reg === undefined) continue;
      let ready = bits & (READY_HANG_UP | READY_ERROR);
      if (reg.interest & INTEREST_READABLE) ready |= bits & (READY_READABLE | READY_READ_CLOSED);
      if (reg.interest & INTEREST_WRITABLE) ready |= bits & READY_WRITABLE;
      if (ready === 0) continue;
      out[2 * n] = reg.key;
      out[2 * n + 1] = ready;
      n++;
    }
    return n;
  }

  private listen(addr: SocketAddress, backlog: number): number {
    this.steps++;
    for (const s of this.sockets.values()) if (s.kind === 'listener' && s.addr.equals(addr)) return fail(ErrorCode.AddressInUse);
    const bound = addr.clone();
    if (bound.port === 0) bound.port = this.nextPort++;
    const fd = this.newSocketNumber();
    this.sockets.set(fd, { kind: 'listener', addr: bound, asked: addr.clone(), backlog: [], max: Math.min(backlog, MAX_BACKLOG) });
    this.note(`plugin listens on ${bound} (socket ${fd})`);
    return fd;
  }

  /** The plugin's listener at `addr`; port 0: the one it made when asked for port 0 on that host. */
  private findListener(addr: SocketAddress): { fd: number; l: Listener } | SimListener | null {
    if (addr.port === 0) {
      for (const [fd, s] of this.sockets) if (s.kind === 'listener' && s.asked.equals(addr)) return { fd, l: s };
      return null;
    }
    for (const [fd, s] of this.sockets) {
      if (s.kind === 'listener' && s.addr.port === addr.port && (s.addr.sameHost(addr) || isUnspecified(s.addr))) return { fd, l: s };
    }
    return this.scenarioListeners.find((l) => l.addr.port === addr.port && l.addr.sameHost(addr)) ?? null;
  }

  private accept(l: number, peer: SocketAddress): number {
    this.steps++;
    const sock = this.sockets.get(l);
    if (sock === undefined || sock.kind !== 'listener') return fail(ErrorCode.BadHandle);
    if (sock.backlog.length === 0) return fail(ErrorCode.WouldBlock);
    if (this.fault('accept-limit', 0, () => `accept on socket ${l} fails with limit`)) return fail(ErrorCode.Limit);
    if (this.fault('wouldblock', 0, () => `accept on socket ${l} says would-block`)) {
      this.edge(l);
      return fail(ErrorCode.WouldBlock);
    }
    const end = sock.backlog.shift()!;
    const fd = this.newSocketNumber();
    end.fd = fd;
    end.accepted = true;
    this.sockets.set(fd, { kind: 'stream', end });
    peer.copyFrom(end.peer.local);
    this.note(`#${end.conn.id} plugin accepts (socket ${fd})`);
    return fd;
  }

  private connect(addr: SocketAddress): number {
    this.steps++;
    const id = this.nextConn++;
    const local = SocketAddress.parse(addr.v6 ? '[::1]:0' : '127.0.0.1:0')!;
    local.port = 50000 + (id % 10000);
    const conn = new Connection(id, this.pipeBytes, local, addr.clone());
    const end = conn.ends[0];
    const fd = this.newSocketNumber();
    end.fd = fd;
    this.sockets.set(fd, { kind: 'stream', end });
    this.note(`#${id} plugin connects to ${addr} (socket ${fd})`);
    const target = this.findListener(addr);
    const refuse = target === null || this.fault('refuse', id, () => `connect to ${addr} refused`);
    const complete = () => {
      if (refuse || !this.enqueue(target!, conn.ends[1])) {
        end.error = ErrorCode.Refused;
        this.note(`#${id} connect refused`);
      } else {
        end.connected = true;
        this.note(`#${id} connected`);
      }
      this.edge(fd);
    };
    if (this.fault('slow-connect', id, () => `connect to ${addr} completes later`)) {
      end.connected = false;
      this.after(this.random.int(1, 500), complete);
    } else complete();
    return fd;
  }

  /** Queues `end` at a listener: the plugin's (its backlog) or the scenario's (a new client). False: the backlog is full. */
  private enqueue(target: { fd: number; l: Listener } | SimListener, end: End): boolean {
    if (target instanceof SimListener) {
      const c = new SimClient(this, end);
      end.client = c;
      this.clients.push(c);
      target.accepted.push(c);
      return true;
    }
    if (target.l.backlog.length >= target.l.max) return false;
    target.l.backlog.push(end);
    this.edge(target.fd);
    return true;
  }

  private stream(sock: number): End | null {
    const s = this.sockets.get(sock);
    return s !== undefined && s.kind === 'stream' ? s.end : null;
  }

  /** A reset fault on the peer of `e` (a client's connection that has carried bytes). */
  private resetFault(e: End): boolean {
    if (e.peer.client === null || e.conn.traffic === 0) return false;
    if (!this.fault('reset', e.conn.id, () => 'the peer resets the connection')) return false;
    this.resetConnection(e.conn);
    return true;
  }

  private resetConnection(conn: Connection): void {
    for (const p of conn.pipes) {
      p.clear();
      p.stalledAt = -1;
    }
    for (const e of conn.ends) {
      e.reset = true;
      this.edgeOf(e);
    }
  }

  /**
   * A would-block storm on `e`: the fault starts one of 1 to 5 would-blocks in
   * a row (no more draws until it is over); each is followed by a new edge, as
   * the contract wants after a would-block that could have gone on.
   */
  private wouldBlockStorm(e: End, op: 'recv' | 'send'): boolean {
    if (e.storm === 0) {
      if (!this.fault('wouldblock', e.conn.id, () => `${op} says would-block`)) return false;
      e.storm = this.random.int(1, 5);
      this.note(`#${e.conn.id} a storm of ${e.storm} would-block${e.storm === 1 ? '' : 's'}`);
    }
    e.storm--;
    this.edge(e.fd);
    return true;
  }

  private recv(sock: number, ptr: number, len: number): number {
    this.steps++;
    const e = this.stream(sock);
    if (e === null) return fail(ErrorCode.BadHandle);
    if (e.error !== null) return fail(e.error);
    if (e.reset || this.resetFault(e)) return fail(ErrorCode.Reset);
    if (!e.connected) return fail(ErrorCode.WouldBlock);
    const pipe = e.in;
    if (e.readShut) return 0;
    const avail = pipe.length;
    if (avail === 0) return pipe.finished ? 0 : fail(ErrorCode.WouldBlock);
    const id = e.conn.id;
    if (this.wouldBlockStorm(e, 'recv')) return fail(ErrorCode.WouldBlock);
    let n = Math.min(len, avail);
    if (n > 1 && this.fault('short-read', id, () => `recv of ${Math.min(len, avail)} shortened`)) n = this.random.int(1, n - 1);
    const bytes = pipe.take(n);
    copyToAddress(ptr, bytes);
    e.conn.traffic += n;
    this.note(`#${id} plugin recv ${n}`);
    // Bytes left after a short read: a new edge (the host treats a short read as drained).
    if (n < len && (pipe.length > 0 || pipe.finished)) this.edge(sock);
    if (pipe.writerBlocked && pipe.room() > 0) {
      pipe.writerBlocked = false;
      this.edgeOf(e.peer);
    }
    return n;
  }

  private send(sock: number, ptr: number, len: number): number {
    this.steps++;
    const e = this.stream(sock);
    if (e === null) return fail(ErrorCode.BadHandle);
    if (e.error !== null) return fail(e.error);
    if (e.reset || this.resetFault(e)) return fail(ErrorCode.Reset);
    if (!e.connected) return fail(ErrorCode.WouldBlock);
    if (e.writeShut) return fail(ErrorCode.Closed);
    const pipe = e.out;
    const id = e.conn.id;
    if (pipe.readerGone) {
      // The peer closed: the bytes go nowhere and draw a reset.
      this.note(`#${id} plugin send ${len} to a closed peer: reset`);
      e.reset = true;
      this.edge(sock);
      return len;
    }
    if (pipe.stalledAt < 0 && e.peer.client !== null && this.fault('stall', id, () => 'the peer stops reading')) {
      pipe.stalledAt = pipe.length + this.random.int(0, 16);
      this.after(this.random.int(1, 200), () => {
        pipe.stalledAt = -1;
        this.note(`#${id} the peer reads again`);
      });
    }
    const room = pipe.room();
    if (room === 0) {
      pipe.writerBlocked = true;
      this.note(`#${id} plugin send: would-block (the peer's buffer is full)`);
      return fail(ErrorCode.WouldBlock);
    }
    if (this.wouldBlockStorm(e, 'send')) return fail(ErrorCode.WouldBlock);
    let n = Math.min(len, room);
    if (n > 1 && this.fault('short-write', id, () => `send of ${Math.min(len, room)} shortened`)) n = this.random.int(1, n - 1);
    const bytes = new Uint8Array(n);
    copyFromAddress(bytes, ptr);
    pipe.push(bytes);
    e.conn.traffic += n;
    this.note(`#${id} plugin send ${n} ${showBytes(bytes)}`);
    if (n < len) {
      pipe.writerBlocked = true;
      if (pipe.room() > 0) this.edge(sock);
    }
    this.edgeOf(e.peer);
    return n;
  }

  private shutdown(sock: number, how: number): number {
    this.steps++;
    const e = this.stream(sock);
    if (e === null) return fail(ErrorCode.BadHandle);
    if (e.error !== null) return fail(ErrorCode.Closed);
    if (how === 0 || how === 2) e.readShut = true;
    if ((how === 1 || how === 2) && !e.writeShut) {
      e.writeShut = true;
      e.out.finished = true;
      this.edgeOf(e.peer);
    }
    this.note(`#${e.conn.id} plugin shutdown ${['receive', 'send', 'both'][how] ?? how}`);
    this.edge(sock);
    return 0;
  }

  private closeSocket(sock: number): void {
    this.steps++;
    const s = this.sockets.get(sock);
    if (s === undefined) return;
    this.sockets.delete(sock);
    this.registered.delete(sock);
    this.pending.delete(sock);
    if (s.kind === 'listener') {
      for (const e of s.backlog) this.resetConnection(e.conn);
      this.note(`plugin closes listener ${s.addr}`);
      return;
    }
    const e = s.end;
    e.fd = -1;
    if (e.in.length > 0 && !e.reset) {
      // Bytes received and never read: the close is a reset, as TCP's is.
      this.note(`#${e.conn.id} plugin closes with ${e.in.length} bytes unread: reset`);
      this.resetConnection(e.conn);
      return;
    }
    e.out.finished = true;
    e.in.readerGone = true;
    this.note(`#${e.conn.id} plugin closes`);
    this.edgeOf(e.peer);
  }

  private address(sock: number, out: SocketAddress, ofPeer: boolean): number {
    this.steps++;
    const s = this.sockets.get(sock);
    if (s === undefined) return fail(ErrorCode.BadHandle);
    if (s.kind === 'listener') {
      if (ofPeer) return fail(ErrorCode.Invalid);
      out.copyFrom(s.addr);
      return 0;
    }
    if (s.end.error !== null && ofPeer) return fail(ErrorCode.Closed);
    out.copyFrom(ofPeer ? s.end.peer.local : s.end.local);
    return 0;
  }

  // ---- the scenario's side ----------------------------------------------------------

  /** A client connection to `addr` (the plugin's listener there queues it; none: refused). */
  clientConnect(addr: SocketAddress): SimClient {
    this.steps++;
    const id = this.nextConn++;
    const local = SocketAddress.parse(addr.v6 ? '[::1]:0' : '127.0.0.1:0')!;
    local.port = 40000 + (id % 10000);
    const conn = new Connection(id, this.pipeBytes, local, addr.clone());
    const end = conn.ends[0];
    const c = new SimClient(this, end);
    end.client = c;
    this.clients.push(c);
    const target = this.findListener(addr);
    if (target === null || !this.enqueue(target, conn.ends[1])) {
      end.error = ErrorCode.Refused;
      this.note(`#${id} client connect to ${addr}: refused`);
    } else this.note(`#${id} client connects to ${addr}`);
    return c;
  }

  /** The scenario's listener on `addr` (made now if there is none), for the plugin's outbound connects. */
  clientListen(addr: SocketAddress): SimListener {
    const existing = this.scenarioListeners.find((l) => l.addr.equals(addr));
    if (existing !== undefined) return existing;
    const l = new SimListener(addr.clone());
    this.scenarioListeners.push(l);
    this.note(`scenario listens on ${addr}`);
    return l;
  }

  clientWrite(c: SimClient, bytes: Uint8Array): void {
    this.steps++;
    const e = c.end;
    if (e.error !== null || e.reset) throw new Error(`#${c.id}: write on a ${e.reset ? 'reset' : 'refused'} connection`);
    if (e.writeShut) throw new Error(`#${c.id}: write after shutdown`);
    this.note(`#${c.id} client sends ${bytes.length} ${showBytes(bytes)}`);
    if (e.out.readerGone) {
      this.note(`#${c.id} the plugin had closed: reset`);
      this.resetConnection(e.conn);
      return;
    }
    e.out.push(bytes);
    e.conn.traffic += bytes.length;
    this.edgeOf(e.peer);
  }

  clientShutdown(c: SimClient): void {
    this.steps++;
    const e = c.end;
    if (e.writeShut) return;
    e.writeShut = true;
    e.out.finished = true;
    this.note(`#${c.id} client shuts down its side`);
    this.edgeOf(e.peer);
  }

  clientClose(c: SimClient): void {
    this.steps++;
    const e = c.end;
    const i = this.clients.indexOf(c);
    if (i >= 0) this.clients.splice(i, 1);
    if (e.in.length > 0 && !e.reset) {
      // What the plugin sent and the client never read: the close is a reset.
      this.note(`#${c.id} client closes with ${e.in.length} bytes unread: reset`);
      this.resetConnection(e.conn);
      return;
    }
    e.writeShut = true;
    e.out.finished = true;
    e.in.readerGone = true;
    e.in.stalledAt = -1;
    this.note(`#${c.id} client closes`);
    this.edgeOf(e.peer);
  }

  clientReset(c: SimClient): void {
    this.steps++;
    this.note(`#${c.id} client resets`);
    this.resetConnection(c.end.conn);
  }
}

function isUnspecified(a: SocketAddress): boolean {
  return a.groups.every((g) => g === 0);
}
