/**
 * Runs one plugin under its policy: N instances, each in its own worker
 * thread, all serving the same listen addresses. Lives on the main thread
 * and never blocks it. It watches every instance (the CPU watchdog),
 * restarts one that dies with backoff, gives up on a plugin that keeps
 * dying at start, drains and stops.
 */
import { Worker } from 'node:worker_threads';
import { WasmuxError } from '../errors.js';
import { SocketAddress } from '../backends/address.js';
import { type BackendModule, type BackendName, codeOf } from '../backends/backend.js';
import { newRegistry } from '../sandbox/handle-table.js';
import { capModule } from '../sandbox/module-limits.js';
import { threadCpuClocks } from '../ffi/thread-cpu.js';
import { openFileLimit } from '../ffi/open-files.js';
import { PROXY_REASONS, type ProxyReason } from '../sandbox/proxy-header.js';
import { MIB, buildPolicy, describePolicy, instanceKnobs, type Policy, type PolicyInput, type PolicyLayer } from '../sandbox/policy.js';
import {
  CTRL_COUNT,
  CTRL_DRAIN,
  CTRL_ADOPT_SEQ,
  CTRL_HANDOVER,
  CTRL_RUN_SEQ,
  DRAIN_DONE,
  DRAIN_STOP,
  CTRL_STATE,
  CTRL_STOP,
  STAT_ACCEPTED,
  STAT_BYTES_IN,
  STAT_BYTES_OUT,
  STAT_COUNT,
  STAT_EVENTS,
  STAT_IDLE_CLOSED,
  STAT_GIVEN,
  STAT_LOG,
  STAT_MEMORY,
  STAT_OPEN,
  STAT_PROXY_REASONS,
  STAT_PROXY_REJECTED,
  STAT_REFUSED,
  STAT_RUN_STARTED_AT,
  STAT_TURN,
  STAT_TURN_SUM,
  STAT_WAITS,
  TURN_BOUNDS,
} from '../sandbox/shared.js';
import { LOG_SHARED_SLOTS, bucketAfter, fullBucket, pendingSummary, type LogBucket } from '../sandbox/log-limiter.js';
import { type MetricDef, type SeriesDef, metricValuesBuffer } from '../sandbox/metrics.js';
import { charged, requestKill } from '../sandbox/gate.js';
import { ERROR_CODE_NAMES } from '../generated/contract.js';
import { loadPlugin, type LoadedPlugin } from '../loader/plugin.js';
import type { Logger } from './logger.js';
import type { AddressData, AdoptMessage, ExitReason, WorkerInput, WorkerMessage } from '../worker/protocol.js';
import { type TraceTail, finishTrace, newTraceTail } from '../trace/recorder.js';

const WORKER_URL = new URL('../worker/main.js', import.meta.url);
/** A reload waits at most this long for the new instances' first poll.wait (their handover.adopt comes before it). */
const FIRST_WAIT_MS = 1000;
// Descriptors the running plugin servers of this process may open between them (workers × maxConnections each).
let descriptorsPromised = 0;

/** Restart delays double from RESTART_MIN_MS up to RESTART_MAX_MS with each death in a row. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;
/**
 * An incarnation that stayed up this long ends a run of deaths: the next
 * death is restarted after RESTART_MIN_MS again. Twice the longest delay, so
 * that a plugin timing its deaths to just past it is still restarted less
 * often (once per 10 s) than one held at the longest delay (once per 5 s).
 */
const STABLE_UPTIME_MS = 2 * RESTART_MAX_MS;
/** Without listen addresses an instance counts as started this long after its thread began. */
const EARLY_DEATH_MS = 2000;
/** This many deaths at start in a row and the plugin is stopped: it is not going to work. */
const CRASH_LOOP_LIMIT = 5;
/**
 * A killed instance inside a host call that opens or closes a descriptor
 * ends itself when the call returns (microseconds; see sandbox/gate.ts). Past
 * this, something is wrong and its thread is terminated regardless.
 */
const KILL_GRACE_MS = 1000;

/**
 * V8 limits for every instance's thread (the old generation is the policy's
 * maxHeapMiB, 64 by default). Without them a worker inherits the
 * process's heap limit, and a guest that fills it (huge funcref/externref
 * tables live in the V8 heap) aborts the whole host. With them, exhausting
 * the heap ends that thread alone (Node's ERR_WORKER_OUT_OF_MEMORY), provided
 * no single allocation overshoots the limit by more than Node's 16 MiB
 * leeway: which is why the policy caps tables at 1,000,000 elements (8 MiB).
 * Measured (v8.getHeapStatistics() sampled in the worker while the http, ws
 * and resp tests and the echo benchmark ran, 100-1000 connections): at most
 * 8.6 MiB of heap used, 5.9 MiB of it old generation, 2 MiB new space,
 * 0.5 MiB of code; each limit below is 8x or more of that.
 */
export const WORKER_LIMITS = {
  maxYoungGenerationSizeMb: 16,
  codeRangeSizeMb: 16,
  stackSizeMb: 4,
} as const;

export interface PluginServerOptions {
  policy: Policy;
  workers: number;
  config: string;
  backend: BackendModule;
  logger: Logger;
  maxRecvBytes: number;
  /** How long `stop()` lets an instance end by itself before terminating its thread. */
  stopTimeoutMs: number;
  /** Record every instance (wasmux run --record): one trace per incarnation (traceFile). */
  record?: { file: string; maxBytes: number; pluginPath: string | null };
  /** The file the plugin was loaded from: what `reload()` reads again by default (null: loaded by the caller). */
  pluginPath?: string | null;
}

/** What `PluginServer.reload` changes; whatever is left out stays as it is. */
export interface ReloadOptions {
  /**
   * The new version: a path to a component, or a plugin already loaded.
   * Default: the file the server was started from, read again (a server
   * started from a LoadedPlugin must be given one).
   */
  plugin?: string | LoadedPlugin;
  /** The new ctx.config. Default: the current one. */
  config?: string;
  /**
   * The new policy (as ServeOptions.policy). Default: the current one. The
   * served addresses stay: they are added to its listen list, and a listen
   * address the server does not already serve is refused (a reload cannot
   * move a plugin).
   */
  policy?: PolicyInput | PolicyLayer[];
  /**
   * How long the old version's instances may go on serving their open
   * connections once the new version is ready. Default 5000 ms
   * (RELOAD_DRAIN_DEFAULT_MS).
   */
  drainTimeoutMs?: number;
}

/** What a successful `reload` resolves to. */
export interface ReloadResult {
  /** The version now serving: 0 is the one the server started with, each reload adds one. */
  generation: number;
  /** sha256 of the new version's component file. */
  sha256: string;
  /** Milliseconds from the call until every new instance listened on every address. */
  readyMs: number;
  /**
   * Resolves once the old version's instances have all ended (drained, or
   * stopped at the drain timeout), with how many connections they were
   * still serving when told to drain.
   */
  drained: Promise<{ connections: number }>;
}

/** ReloadOptions.drainTimeoutMs by default. */
export const RELOAD_DRAIN_DEFAULT_MS = 5000;

/**
 * The trace of one incarnation (docs/trace-format.md): `file` for the only
 * instance, `file.<instance>` when there are several; a restart's thread
 * adds `.r<restarts>`, so that no incarnation overwrites another's trace.
 * (A version after a reload passes `file.g<version>` as `file`.)
 */
export function traceFile(file: string, workers: number, instance: number, restarts: number): string {
  const base = workers === 1 ? file : `${file}.${instance}`;
  return restarts === 0 ? base : `${base}.r${restarts}`;
}

export interface InstanceStats {
  instance: number;
  running: boolean;
  /** Counters summed over every incarnation of this instance. */
  accepted: number;
  open: number;
  bytesIn: number;
  bytesOut: number;
  events: number;
  waits: number;
  /** Connections closed at accept because the instance was at maxConnections. */
  refused: number;
  /** Connections shut down by the idle timeout. */
  idleClosed: number;
  /**
   * Connections closed before the guest saw them because their PROXY
   * protocol header (policy proxyProtocol) was refused, by reason.
   */
  proxyRejected: Record<ProxyReason, number>;
  /** The current incarnation's linear memory, in bytes (0 when none runs). */
  memoryBytes: number;
  restarts: number;
  /**
   * CPU time used so far by the current incarnation's thread (the guest and
   * the host calls it makes), in milliseconds, from its per-thread CPU clock
   * (ffi/thread-cpu.ts); null when none runs or the OS has no such clock
   * (Linux only). It starts again from 0 at each restart.
   */
  cpuMs: number | null;
  /** Ends by cause (trapped, killed by the watchdog, failed, crashed), over all incarnations. */
  ends: Record<string, number>;
  /**
   * Loop turns (the guest's time between two waits), over all incarnations:
   * the count per bound of TURN_BOUNDS (seconds) then +Inf, not cumulative, and their sum in seconds.
   */
  turns: { buckets: number[]; sum: number };
}

/** One instance's plugin-defined metrics now (wit/metrics.wit): its current incarnation's definitions and values. */
export interface InstanceMetrics {
  instance: number;
  metrics: ReadonlyMap<number, MetricDef>;
  series: readonly SeriesDef[];
  /** The values, laid out as sandbox/metrics.ts says (shared with the instance's thread: read, never written). */
  values: Float64Array;
}

const TURN_SLOTS = Array.from({ length: TURN_BOUNDS.length + 2 }, (_, i) => STAT_TURN + i);
if (TURN_SLOTS.at(-1) !== STAT_TURN_SUM) throw new Error('loop-turn slots out of order');
const COUNTERS = [
  STAT_GIVEN,
  STAT_ACCEPTED,
  STAT_BYTES_IN,
  STAT_BYTES_OUT,
  STAT_EVENTS,
  STAT_WAITS,
  STAT_REFUSED,
  STAT_IDLE_CLOSED,
  ...TURN_SLOTS,
  ...Array.from({ length: STAT_PROXY_REASONS }, (_, i) => STAT_PROXY_REJECTED + i),
];

/** Int32 cells over shared memory, all -1 (free): WorkerInput.handover. */
function newCells(n: number): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(4 * n);
  new Int32Array(buf).fill(-1);
  return buf;
}

/** One incarnation of an instance: a worker thread and its shared state. */
class Incarnation {
  readonly control = new Int32Array(new SharedArrayBuffer(CTRL_COUNT * 4));
  readonly stats = new Float64Array(new SharedArrayBuffer(STAT_COUNT * 8));
  readonly registry: SharedArrayBuffer;
  readonly worker: Worker;
  readonly startedAt = performance.now();
  wakeTarget = -1;
  /** The worker thread's CPU clock, when the OS has one (see ffi/thread-cpu.ts). */
  cpuClock: number | null = null;
  // The watchdog's view of the current run: its number, and the thread's
  // CPU time when the watchdog first saw it.
  runSeq = 0;
  runCpuAt = 0;
  exitReason: ExitReason | null = null;
  exitMessage: string | null = null;
  listening = 0;
  /** Its listening descriptor per address (index in PluginServer.addresses; -1: none yet), for a reload to hand over. */
  readonly listenerFds: number[];
  /** The listening sockets handed to it by the previous version (WorkerInput.inherited), or null. */
  readonly inherited: Float64Array | null;
  /** How many sockets it was handed (cells set at its start). */
  readonly inheritedCount: number;
  readonly gone: Promise<void>;
  /** Its recording's shared tail (--record), which onGone finishes when the thread could not. */
  readonly trace: { file: string; tail: TraceTail } | null;
  /** Live handover cells (WorkerInput.handover), or null (recording). */
  readonly outgoing: Int32Array | null;
  readonly incoming: Int32Array | null;
  /** Bit i: its guest takes connections handed over on address i (it called handover.adopt there). */
  adopting = 0;
  /** Connections it gave in the batch under way (routed at its end, or when the thread is gone). */
  giving: { cell: number; listen: number; state: Uint8Array; peer?: AddressData }[] = [];
  /** Its plugin-defined metrics: values shared with the thread, definitions as it posted them. */
  readonly metricValues: Float64Array;
  readonly metricDefs = new Map<number, MetricDef>();
  readonly metricSeries: SeriesDef[] = [];

  constructor(
    input: Omit<WorkerInput, 'control' | 'stats'>,
    readonly heapMiB: number,
  ) {
    this.registry = input.registry;
    this.listenerFds = input.listen.map(() => -1);
    this.inherited = input.inherited ? new Float64Array(input.inherited) : null;
    this.inheritedCount = this.inherited ? this.inherited.filter((fd) => fd >= 0).length : 0;
    this.trace = input.record ? { file: input.record.file, tail: input.record.tail } : null;
    this.outgoing = input.handover ? new Int32Array(input.handover.outgoing) : null;
    this.incoming = input.handover ? new Int32Array(input.handover.incoming) : null;
    this.metricValues = new Float64Array(input.metrics);
    const data: WorkerInput = {
      ...input,
      control: this.control.buffer as SharedArrayBuffer,
      stats: this.stats.buffer as SharedArrayBuffer,
    };
    this.worker = new Worker(WORKER_URL, {
      workerData: data,
      stdout: false,
      stderr: false,
      resourceLimits: { ...WORKER_LIMITS, maxOldGenerationSizeMb: heapMiB },
    });
    this.gone = new Promise((resolve) =>
      this.worker.once('exit', () => {
        // Nothing reads a dead thread's clock: a readMs after this is guarded by exitReason or the slot moving on.
        if (this.cpuClock !== null) threadCpuClocks()?.release(this.cpuClock);
        this.cpuClock = null;
        resolve();
      }),
    );
  }
}

/**
 * One version of the plugin: what its instances run (the module, config and
 * policy of one load, `server.reload()` making the next), and its slots.
 */
class Generation {
  readonly slots: Slot[] = [];
  /** Told to drain (a reload replaced it, or drain()): its instances end and are never restarted. */
  retired = false;
  /** Set while a reload waits for it: a death before it is ready fails the reload (no restart). */
  starting: { fail(e: WasmuxError): void; ready(): void } | null = null;
  constructor(
    readonly number: number,
    readonly module: WebAssembly.Module,
    readonly sha256: string,
    readonly config: string,
    readonly policy: Policy,
  ) {}

  /** Every instance listens on every one of `n` addresses. */
  listensOnAll(n: number): boolean {
    return this.slots.every((s) => s.current !== null && s.current.listening >= n);
  }
}

/** An instance slot: its current incarnation and what outlives incarnations. */
class Slot {
  current: Incarnation | null = null;
  restarts = 0;
  /** Deaths at start in a row, for the crash-loop rule. */
  earlyDeaths = 0;
  /** Deaths in a row, at start or later, for the restart delay. */
  deathsInARow = 0;
  readonly totals = new Float64Array(STAT_COUNT);
  readonly ends: Record<string, number> = {};
  restartTimer: NodeJS.Timeout | null = null;
  /** The instance's log rate, carried from one incarnation to the next. */
  logBucket: LogBucket = fullBucket();
  constructor(
    readonly index: number,
    readonly gen: Generation,
  ) {}
}

/** Reload counters (PluginServer.reloadStats). */
export interface ReloadStats {
  /** The version serving: 0 until the first reload. */
  generation: number;
  /** sha256 of the version serving. */
  sha256: string;
  /** Reloads that put a new version in place, and reloads that failed or were refused (the old version serving on). */
  done: number;
  failed: number;
  /**
   * Listening sockets handed from an old instance to the new one of the
   * same index (one per instance and address per reload where the OS has
   * SO_REUSEPORT groups; 0 on iocp, whose instances share one socket).
   */
  listenersHandedOver: number;
  /**
   * Per version replaced: the connections its instances were serving when
   * told to drain, and how many of them were still open at the drain
   * timeout (closed then). `cut` is null while it still drains.
   */
  drained: {
    generation: number;
    sha256: string;
    connections: number;
    cut: number | null;
    /** Of its connections, how many a newer version adopted (live handover), and how many handovers failed (closed). */
    handedOver: number;
    handoverFailed: number;
  }[];
  /** Live handovers (wit/handover.wit) over every reload: connections adopted by the new version, and closed because a handover failed. */
  handoversDone: number;
  handoversFailed: number;
}

export class PluginServer {
  readonly name: string;
  /** The I/O backend every instance uses. */
  readonly backend: BackendName;
  /** The addresses served, with port 0 resolved. */
  readonly addresses: readonly SocketAddress[];
  /** The version serving (replaced by each reload). */
  private gen: Generation;
  /** Versions a reload replaced whose instances are still draining. */
  private readonly retiring = new Set<Generation>();
  private readonly reservations: number[] = [];
  private readonly watchdog: NodeJS.Timeout;
  private stopping: Promise<void> | null = null;
  /** drain() has begun: no reload from here on. */
  private draining = false;
  /** The reload in progress (or a settled one): the next waits for it. */
  private reloading: Promise<void> = Promise.resolve();
  private readonly reloadCounts: ReloadStats = {
    generation: 0,
    sha256: '',
    done: 0,
    failed: 0,
    listenersHandedOver: 0,
    drained: [],
    handoversDone: 0,
    handoversFailed: 0,
  };
  /** Round robin over the new version's instances for a handover whose own index does not adopt. */
  private handoverNext = 0;
  /** Per version: connections it gave whose handover has ended (adopted by a newer version, or closed). */
  private readonly settledGiven = new Map<number, number>();
  /** Totals of the instances of versions that have ended, per instance index. */
  private readonly pastTotals: { totals: Float64Array; ends: Record<string, number>; restarts: number }[] = [];
  private failure: WasmuxError | null = null;
  private isReady = false;
  /** done has resolved: every instance has ended. */
  private ended = false;
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  private doneResolve!: () => void;
  /** Resolves once every instance listens on every address; rejects if the plugin fails first. */
  readonly ready: Promise<void>;
  /** Resolves when the plugin has ended: stopped, every instance returned, or given up on. */
  readonly done: Promise<void>;
  /** This server's share of descriptorsPromised (workers × maxConnections of the version serving). */
  private promised = 0;

  private constructor(
    plugin: LoadedPlugin,
    module: WebAssembly.Module,
    private readonly opts: PluginServerOptions,
    addresses: SocketAddress[],
  ) {
    this.name = plugin.name;
    this.backend = opts.backend.name;
    this.gen = new Generation(0, module, plugin.info.sha256, opts.config, opts.policy);
    this.reloadCounts.sha256 = plugin.info.sha256;
    this.addresses = addresses;
    this.ready = new Promise((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.then(
      () => (this.isReady = true),
      () => {}, // observed through `ready`
    );
    this.done = new Promise((res) => (this.doneResolve = res));
    // Ended: its share of the descriptors promised (promiseDescriptors) is given back.
    void this.done.then(() => {
      descriptorsPromised -= this.promised;
      this.promised = 0;
    });
    void this.done.then(() => (this.ended = true));
    // A kill comes at most one tick after the budget: keep ticks short
    // (<= 20 ms, a tenth of the budget), well inside budget + 100 ms.
    const period = Math.max(5, Math.min(20, Math.floor(opts.policy.cpuBudgetMs / 10)));
    this.watchdog = setInterval(() => this.checkBudgets(), period);
    this.watchdog.unref();
  }

  /**
   * Where the plugin is: starting (not every instance listens yet), serving,
   * draining, stopped (stop() called or every instance ended), or failed
   * (given up on: a crash loop or a failure at start).
   */
  get state(): 'starting' | 'serving' | 'draining' | 'stopped' | 'failed' {
    if (this.failure) return 'failed';
    if (this.ended) return 'stopped';
    if (this.draining) return 'draining';
    if (this.stopping) return 'stopped';
    return this.isReady ? 'serving' : 'starting';
  }

  /** The policy of the version serving. */
  get policy(): Policy {
    return this.gen.policy;
  }

  /** sha256 of the version serving (its component file). */
  get sha256(): string {
    return this.gen.sha256;
  }

  /** The version serving: 0 is the one started with, each successful reload adds one. */
  get generation(): number {
    return this.gen.number;
  }

  static async start(plugin: LoadedPlugin, opts: PluginServerOptions): Promise<PluginServer> {
    const { backend, policy } = opts;
    const module = await compileCapped(plugin, policy);
    // Reserve every address first: port 0 becomes a concrete port that all
    // instances share, and a port in use fails here, clearly, before any
    // guest runs.
    const resolved: SocketAddress[] = [];
    const reservations: number[] = [];
    for (const addr of policy.listen) {
      const out = new SocketAddress();
      const fd = backend.reserve(addr, out);
      if (fd < 0) {
        reservations.forEach((r) => backend.closeDescriptor(r));
        throw new WasmuxError('WASMUX_ERR_LISTEN', `cannot listen on ${addr}: ${ERROR_CODE_NAMES[codeOf(fd)]}`);
      }
      reservations.push(fd);
      resolved.push(out);
    }
    const server = new PluginServer(plugin, module, opts, resolved);
    server.reservations.push(...reservations);
    server.log('debug', `policy ${JSON.stringify(describePolicy(policy))}`);
    server.promiseDescriptors(opts.workers * policy.maxConnections);
    for (let i = 0; i < opts.workers; i++) {
      const slot = new Slot(i, server.gen);
      server.gen.slots.push(slot);
      server.spawn(slot, null);
    }
    if (resolved.length === 0) server.readyResolve();
    return server;
  }

  /** The slots of every version still running: the current one's, and those draining. */
  private allSlots(): Slot[] {
    const all = [...this.gen.slots];
    for (const g of this.retiring) all.push(...g.slots);
    return all;
  }

  /**
   * Starts an incarnation of `slot`. `inherited`: a Float64Array over shared
   * memory, one cell per address, of listening sockets handed over by the
   * previous version (PluginServer.reload), or null.
   */
  private spawn(slot: Slot, inherited: SharedArrayBuffer | null): void {
    const o = this.opts;
    const gen = slot.gen;
    const p = gen.policy;
    // A later version's threads record into their own traces: `.g<generation>` before any restart's `.r<n>`.
    const traceBase = gen.number === 0 ? o.record?.file : `${o.record?.file}.g${gen.number}`;
    const inc = new Incarnation(
      {
        plugin: this.name,
        module: gen.module,
        backend: o.backend.name,
        instance: slot.index,
        config: gen.config,
        listen: this.addresses.map((a) => a.toData()),
        sharedListen: true,
        limits: {
          ...instanceKnobs(p),
          maxRecvBytes: o.maxRecvBytes,
          maxBacklog: 4096,
          connect: p.connect.map((r) => r.text),
          proxyProtocol: p.proxyProtocol,
        },
        logBucket: slot.logBucket,
        record:
          o.record === undefined
            ? undefined
            : {
                file: traceFile(traceBase!, o.workers, slot.index, slot.restarts),
                maxBytes: o.record.maxBytes,
                pluginPath: o.record.pluginPath,
                sha256: gen.sha256,
                maxTableElements: p.maxTableElements,
                maxHeapMiB: p.maxHeapMiB,
                cpuBudgetMs: p.cpuBudgetMs,
                incarnation: slot.restarts,
                tail: newTraceTail(),
              },
        metrics: metricValuesBuffer(p.metricSeries),
        // Handles: the connections, plus room for listeners and connects in flight.
        registry: newRegistry(p.maxConnections + p.listen.length + 64),
        inherited: inherited ?? undefined,
        // Not while recording (a handover is not recorded: trace/recorder.ts).
        handover: o.record === undefined ? { outgoing: newCells(p.maxConnections), incoming: newCells(p.maxConnections) } : undefined,
      },
      p.maxHeapMiB,
    );
    slot.current = inc;
    inc.worker.on('message', (m: WorkerMessage) => this.onMessage(slot, inc, m));
    inc.worker.on('error', (e: Error & { code?: string }) => {
      if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        // The guest filled its thread's heap (tables are the way to): a trap,
        // named over a watchdog kill that may have come while it did.
        if (inc.exitReason !== 'stopped') {
          inc.exitReason = 'trapped';
          inc.exitMessage = `exhausted its V8 heap (limit ${inc.heapMiB} MiB)`;
        }
        return;
      }
      inc.exitReason ??= 'crashed';
      inc.exitMessage ??= e.message;
    });
    void inc.gone.then(() => this.onGone(slot, inc));
  }

  private onMessage(slot: Slot, inc: Incarnation, m: WorkerMessage): void {
    switch (m.type) {
      case 'started':
        inc.wakeTarget = m.wakeTarget;
        inc.cpuClock = m.cpuClock;
        // A stop or drain requested before the worker could be woken.
        if (this.stopping || Atomics.load(inc.control, CTRL_DRAIN) || Atomics.load(inc.control, CTRL_STOP)) {
          this.opts.backend.wake(inc.wakeTarget);
        }
        break;
      case 'log':
        this.opts.logger({ level: m.level, source: this.name, instance: slot.index, origin: m.origin, message: m.message });
        break;
      case 'listening': {
        inc.listening++;
        const i = this.addresses.findIndex((a) => a.v6 === m.address.v6 && a.port === m.address.port && sameGroups(a, m.address));
        if (i >= 0) inc.listenerFds[i] = m.fd;
        const gen = slot.gen;
        if (!gen.listensOnAll(this.addresses.length)) break;
        if (gen.starting) gen.starting.ready();
        else if (gen.number === 0) this.readyResolve();
        break;
      }
      case 'gave':
        inc.giving.push({ cell: m.cell, listen: m.listen, state: m.state, peer: m.peer });
        break;
      case 'gave-end':
        this.routeBatch(slot, inc);
        break;
      case 'adopting':
        inc.adopting |= 1 << m.listen;
        // A version already draining learns of it too (its instances give from then on).
        if (slot.gen === this.gen) for (const g of this.retiring) if (g.retired) this.allowHandover(g);
        break;
      case 'handover-end':
        if (m.from !== null) this.settle(m.from);
        this.countHandover(m.from ?? slot.gen.number, m.ok);
        break;
      case 'metric':
        inc.metricDefs.set(m.def.id, m.def);
        break;
      case 'metric-series':
        inc.metricSeries.push(m.series);
        break;
      case 'exit':
        // A kill already recorded its cause; the thread's own report comes second.
        if (inc.exitReason === null) {
          inc.exitReason = m.reason;
          inc.exitMessage = m.message;
        }
        break;
    }
  }

  /**
   * The watchdog: an instance whose guest has run (outside poll.wait) for
   * more than its budget is killed. A run starts before instantiation (a
   * start function is guest code) and at every return from the backend's
   * wait; host calls count, the wait does not. Where the OS gives a
   * per-thread CPU clock (Linux, Windows), that is CPU time: measured from the first
   * tick that saw the run, so a kill comes within two ticks after the
   * budget, and a thread that is starved of CPU on a busy machine is not
   * charged for waiting. Elsewhere it is wall-clock time from the worker's
   * own stamp of the run's start. Every running version is watched.
   */
  private checkBudgets(): void {
    const cpu = threadCpuClocks();
    const now = performance.timeOrigin + performance.now();
    for (const slot of this.allSlots()) {
      const budget = slot.gen.policy.cpuBudgetMs;
      const inc = slot.current;
      if (!inc || inc.exitReason !== null) continue;
      const seq = Atomics.load(inc.control, CTRL_RUN_SEQ);
      // Not started yet, or blocked in wait (which costs nothing).
      if (seq === 0 || !charged(Atomics.load(inc.control, CTRL_STATE))) continue;
      let ran: number;
      if (cpu && inc.cpuClock !== null) {
        const used = cpu.readMs(inc.cpuClock);
        if (Number.isNaN(used)) continue; // the thread has just ended
        if (seq !== inc.runSeq) {
          inc.runSeq = seq;
          inc.runCpuAt = used;
          continue;
        }
        ran = used - inc.runCpuAt;
      } else {
        ran = now - inc.stats[STAT_RUN_STARTED_AT]!;
      }
      if (ran > budget) {
        inc.exitReason = 'killed';
        inc.exitMessage = `ran ${Math.round(ran)} ms${cpu && inc.cpuClock !== null ? ' of CPU' : ''} without returning to poll.wait (cpu budget ${budget} ms)`;
        this.kill(slot, inc);
      }
    }
  }

  /**
   * Ends an incarnation's thread through the kill gate (sandbox/gate.ts): at
   * once, unless it is inside a host call that opens or closes a
   * descriptor; then it ends itself as the call returns, and is terminated
   * only if it has not within KILL_GRACE_MS. The caller has recorded why.
   */
  private kill(slot: Slot, inc: Incarnation): void {
    if (requestKill(inc.control)) {
      void inc.worker.terminate();
      return;
    }
    const fallback = setTimeout(() => {
      this.log('warn', `did not end within ${KILL_GRACE_MS} ms of its kill (inside a host call); terminating its thread`, slot.index);
      void inc.worker.terminate();
    }, KILL_GRACE_MS);
    void inc.gone.then(() => clearTimeout(fallback));
  }

  // The thread is gone: close every descriptor it still had, count, then
  // decide whether it comes back.
  private onGone(slot: Slot, inc: Incarnation): void {
    // Each number once: closing one twice could hit a descriptor that
    // another worker has opened under the same number in the meantime.
    const closed = new Set<number>();
    for (const fds of [new Float64Array(inc.registry), inc.inherited]) {
      if (fds === null) continue;
      for (let i = 0; i < fds.length; i++) {
        const fd = fds[i]!;
        fds[i] = -1;
        if (fd < 0 || closed.has(fd)) continue;
        closed.add(fd);
        this.opts.backend.closeDescriptor(fd);
      }
    }
    // A batch it gave before it died goes on (the messages come before the thread's end).
    if (inc.giving.length > 0) this.routeBatch(slot, inc);
    // Connections it gave that were not routed, and those handed to it not adopted yet.
    for (const cells of [inc.outgoing, inc.incoming]) {
      if (cells === null) continue;
      for (let i = 0; i < cells.length; i++) {
        const fd = Atomics.exchange(cells, i, -1);
        if (fd < 0 || closed.has(fd)) continue;
        closed.add(fd);
        this.opts.backend.closeDescriptor(fd);
        // (One handed to it counts against the version it came from only at that version's drain deadline.)
        if (cells === inc.outgoing) this.settle(slot.gen.number);
        this.countHandover(slot.gen.number, false);
      }
    }
    inc.listenerFds.fill(-1);
    for (const k of COUNTERS) slot.totals[k]! += inc.stats[k]!;
    // Lines the instance's log limiter suppressed since its last summary: however it ended, none goes unsaid.
    const logShared = inc.stats.subarray(STAT_LOG, STAT_LOG + LOG_SHARED_SLOTS);
    const suppressed = pendingSummary(logShared, performance.timeOrigin + performance.now());
    if (suppressed !== null) this.log('warn', suppressed, slot.index);
    slot.logBucket = bucketAfter(logShared, slot.logBucket);
    inc.stats.fill(0);
    if (inc.exitReason === null) {
      inc.exitReason = 'crashed';
      inc.exitMessage = 'the worker thread ended without reporting';
    }
    const reason = inc.exitReason;
    // A thread that was terminated (a kill, its heap exhausted) did not end its trace: that happens here.
    if (inc.trace !== null) {
      try {
        finishTrace(inc.trace.tail, inc.trace.file, reason, inc.exitMessage);
      } catch (e) {
        this.log('warn', `could not finish the trace ${inc.trace.file}: ${(e as Error).message}`, slot.index);
      }
    }
    if (reason !== 'stopped') slot.ends[reason] = (slot.ends[reason] ?? 0) + 1;
    const gen = slot.gen;
    // A version being started by a reload: any end before it is ready fails the reload (the old version serves on).
    if (gen.starting) {
      gen.starting.fail(
        new WasmuxError(
          'WASMUX_ERR_RELOAD',
          `plugin ${this.name}: version ${gen.number} (sha256 ${gen.sha256}) instance ${slot.index} ${reason} at start: ${inc.exitMessage}`,
        ),
      );
      return;
    }
    // A version replaced by a reload: it ends, it does not come back.
    if (gen.retired && gen !== this.gen) {
      if (reason !== 'stopped' && reason !== 'returned') this.log('error', `${reason} while draining: ${inc.exitMessage}`, slot.index);
      this.maybeRetired(gen);
      return;
    }
    if (this.stopping || reason === 'stopped') {
      this.maybeDone();
      return;
    }

    if (reason === 'returned') {
      this.log('info', 'run returned; instance ended', slot.index);
      this.maybeDone();
      return;
    }
    this.log('error', `${reason}: ${inc.exitMessage}`, slot.index);

    // "At start": before it listened on every address (or, serving none, in its first moments).
    const early = this.addresses.length > 0 ? inc.listening < this.addresses.length : performance.now() - inc.startedAt < EARLY_DEATH_MS;
    if (early && reason === 'failed') {
      // run() itself said it cannot start (bad config, a listen refused): trying again cannot help.
      this.failure = new WasmuxError(
        'WASMUX_ERR_PLUGIN_FAILED',
        `plugin ${this.name}: instance ${slot.index} could not start: ${inc.exitMessage}`,
      );
      this.readyReject(this.failure);
      void this.stop();
      return;
    }
    slot.earlyDeaths = early ? slot.earlyDeaths + 1 : 0;
    if (slot.earlyDeaths >= CRASH_LOOP_LIMIT) {
      this.failure = new WasmuxError(
        'WASMUX_ERR_CRASH_LOOP',
        `plugin ${this.name}: instance ${slot.index} failed ${slot.earlyDeaths} times in a row at start (last: ${reason}: ${inc.exitMessage}); the plugin is stopped`,
      );
      this.log('error', this.failure.message);
      this.readyReject(this.failure);
      void this.stop();
      return;
    }
    // Every death counts toward the delay, not only those at start: an
    // instance that gets ready and then dies at once would otherwise be
    // restarted ten times a second for ever.
    const uptime = performance.now() - inc.startedAt;
    slot.deathsInARow = uptime >= STABLE_UPTIME_MS ? 1 : slot.deathsInARow + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (slot.deathsInARow - 1));
    this.log('info', `restarting in ${delay} ms`, slot.index);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = null;
      if (this.stopping || slot.gen.retired) return;
      slot.restarts++;
      this.spawn(slot, null);
    }, delay);
  }

  private maybeDone(): void {
    const slots = this.gen.slots;
    if (
      this.retiring.size === 0 &&
      slots.every((s) => !s.current || s.current.exitReason !== null) &&
      slots.every((s) => !s.restartTimer)
    ) {
      if (!this.stopping) this.readyReject(new WasmuxError('WASMUX_ERR_PLUGIN_FAILED', `plugin ${this.name} ended before it was ready`));
      void this.stop();
    }
  }

  // A replaced version whose last instance has ended: its counters go to the totals.
  private maybeRetired(gen: Generation): void {
    if (!this.retiring.has(gen) || gen.slots.some((s) => s.current !== null && s.current.exitReason === null)) return;
    this.retiring.delete(gen);
    this.keepTotals(gen);
  }

  // A version's counters, kept once its instances are gone (stats() sums them per instance index).
  private keepTotals(gen: Generation): void {
    for (const slot of gen.slots) {
      const past = (this.pastTotals[slot.index] ??= { totals: new Float64Array(STAT_COUNT), ends: {}, restarts: 0 });
      for (const k of COUNTERS) past.totals[k]! += slot.totals[k]!;
      for (const [k, v] of Object.entries(slot.ends)) past.ends[k] = (past.ends[k] ?? 0) + v;
      past.restarts += slot.restarts;
      slot.totals.fill(0);
      for (const k of Object.keys(slot.ends)) delete slot.ends[k];
      slot.restarts = 0;
    }
  }

  // Every plugin server of this process adds what its policy lets it
  // open; past the process's open-file limit, accepts would fail with
  // EMFILE long before the policies' caps: say so at start, and at a
  // reload whose policy changes it (this server's share is replaced).
  private promiseDescriptors(n: number): void {
    descriptorsPromised += n - this.promised;
    this.promised = n;
    const limit = openFileLimit();
    if (limit !== null && descriptorsPromised > limit) {
      this.log(
        'warn',
        `workers × max-connections of the plugins in this process come to ${descriptorsPromised} descriptors, ` +
          `more than its open-file limit (${limit}, RLIMIT_NOFILE): connections past it will be refused by the OS`,
      );
    }
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', message: string, instance?: number): void {
    this.opts.logger({ level, source: this.name, instance, origin: 'host', message });
  }

  /** Why the plugin was given up on, if it was (a crash loop). */
  get failed(): WasmuxError | null {
    return this.failure;
  }

  /** Per instance index, over every version: counters summed, `open` and memory of what runs now. */
  stats(): InstanceStats[] {
    const cpu = threadCpuClocks();
    const cpuMs = (inc: Incarnation | null): number | null => {
      if (!cpu || !inc || inc.exitReason !== null || inc.cpuClock === null) return null;
      const ms = cpu.readMs(inc.cpuClock);
      return Number.isNaN(ms) ? null : ms;
    };
    const draining = [...this.retiring].flatMap((g) => g.slots);
    return this.gen.slots.map((slot) => {
      const same = [slot, ...draining.filter((s) => s.index === slot.index)];
      const past = this.pastTotals[slot.index];
      const live = (s: Slot) => s.current?.stats;
      const sum = (k: number) => (past ? past.totals[k]! : 0) + same.reduce((n, s) => n + s.totals[k]! + (live(s) ? live(s)![k]! : 0), 0);
      const ends: Record<string, number> = { ...past?.ends };
      for (const s of same) for (const [k, v] of Object.entries(s.ends)) ends[k] = (ends[k] ?? 0) + v;
      return {
        instance: slot.index,
        running: slot.current !== null && slot.current.exitReason === null,
        accepted: sum(STAT_ACCEPTED),
        open: same.reduce((n, s) => n + (live(s) ? live(s)![STAT_OPEN]! : 0), 0),
        bytesIn: sum(STAT_BYTES_IN),
        bytesOut: sum(STAT_BYTES_OUT),
        events: sum(STAT_EVENTS),
        waits: sum(STAT_WAITS),
        refused: sum(STAT_REFUSED),
        idleClosed: sum(STAT_IDLE_CLOSED),
        proxyRejected: Object.fromEntries(PROXY_REASONS.map((r, i) => [r, sum(STAT_PROXY_REJECTED + i)])) as Record<ProxyReason, number>,
        memoryBytes: live(slot) ? live(slot)![STAT_MEMORY]! : 0,
        restarts: (past?.restarts ?? 0) + same.reduce((n, s) => n + s.restarts, 0),
        cpuMs: cpuMs(slot.current),
        ends,
        turns: { buckets: TURN_SLOTS.slice(0, -1).map(sum), sum: sum(STAT_TURN_SUM) },
      };
    });
  }

  /**
   * The plugin-defined metrics of each instance of the version serving, as
   * its running incarnation defined them (none while it is down: a restart
   * defines them again, from 0).
   */
  pluginMetrics(): InstanceMetrics[] {
    const out: InstanceMetrics[] = [];
    for (const slot of this.gen.slots) {
      const inc = slot.current;
      if (!inc || inc.exitReason !== null || inc.metricDefs.size === 0) continue;
      out.push({ instance: slot.index, metrics: inc.metricDefs, series: inc.metricSeries, values: inc.metricValues });
    }
    return out;
  }

  /** Reloads done and failed, and what each replaced version was serving when it drained. */
  reloadStats(): ReloadStats {
    const r = this.reloadCounts;
    return { ...r, generation: this.gen.number, sha256: this.gen.sha256, drained: r.drained.map((d) => ({ ...d })) };
  }

  /** How each instance's current incarnation ended (null: still running). */
  exitReasons(): (ExitReason | null)[] {
    return this.gen.slots.map((s) => s.current?.exitReason ?? null);
  }

  /**
   * Replaces the running version by a new one without refusing a
   * connection: the new version (ReloadOptions; by default the same file,
   * read again) is loaded and compiled, its instances start on the same
   * addresses, inheriting the old instances' listening sockets, and once
   * each listens on every address the old instances drain (their guests see
   * their listeners hang up) and end within `drainTimeoutMs`. The promise
   * resolves once the new version is ready and the old instances have
   * closed their listeners (every connection from then on goes to the new
   * version); ReloadResult.drained follows the old one's end.
   *
   * Rejects, and leaves the old version serving untouched, when the new one
   * does not load (its loader code: WASMUX_ERR_NOT_WASM...), fails or traps
   * at start or does not get ready within the start timeout
   * (WASMUX_ERR_RELOAD, the cause in its message and `cause`). Reloads run
   * one at a time: a second call waits for the first. A reload of a server
   * that is draining, stopping or stopped is refused (WASMUX_ERR_RELOAD).
   */
  reload(options: ReloadOptions = {}): Promise<ReloadResult> {
    const run = this.reloading.then(() => this.doReload(options));
    this.reloading = run.then(
      () => {},
      () => {},
    );
    run.catch((e: Error & { code?: string }) => {
      this.reloadCounts.failed++;
      this.log(
        'error',
        `reload failed (${e.code ?? 'WASMUX_ERR_RELOAD'}): ${e.message}${this.stopping ? '' : `; version ${this.gen.number} serves on`}`,
      );
    });
    return run;
  }

  private async doReload(options: ReloadOptions): Promise<ReloadResult> {
    const t0 = performance.now();
    const refuse = (why: string) => new WasmuxError('WASMUX_ERR_RELOAD', `plugin ${this.name}: ${why}`);
    if (this.stopping || this.draining) throw refuse('it is draining, stopping or stopped: no reload');
    const drainMs = options.drainTimeoutMs ?? RELOAD_DRAIN_DEFAULT_MS;
    if (!Number.isInteger(drainMs) || drainMs < 0)
      throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `drainTimeoutMs must be a non-negative integer (got ${drainMs})`);
    const old = this.gen;
    // 1. Load and compile: a failure here touches nothing.
    let plugin: LoadedPlugin;
    if (options.plugin === undefined) {
      if (!this.opts.pluginPath) throw refuse('it was started from a loaded plugin: give reload() one (ReloadOptions.plugin)');
      plugin = await loadPlugin(this.opts.pluginPath);
    } else {
      plugin = typeof options.plugin === 'string' ? await loadPlugin(options.plugin) : options.plugin;
    }
    let policy = old.policy;
    if (options.policy !== undefined) {
      policy = buildPolicy(Array.isArray(options.policy) ? options.policy : [{ where: 'policy', input: options.policy }]);
      for (const a of policy.listen) {
        if (!old.policy.listen.some((p) => p.equals(a)))
          throw refuse(`a reload cannot add a listen address (${a}): restart to move the plugin`);
      }
      policy.listen = [...old.policy.listen];
    }
    const module = await compileCapped(plugin, policy);
    if (this.stopping || this.draining) throw refuse('it was drained or stopped during the reload');

    // 2. Start the new version's instances, each with the listening sockets of the old instance of its index.
    const gen = new Generation(old.number + 1, module, plugin.info.sha256, options.config ?? old.config, policy);
    this.log('info', `reload: starting version ${gen.number} (sha256 ${gen.sha256}), ${this.opts.workers} worker(s)`);
    const ready = new Promise<void>((resolve, reject) => {
      gen.starting = { ready: resolve, fail: reject };
    });
    const timer = setTimeout(
      () => gen.starting?.fail(refuse(`version ${gen.number} did not listen on every address within ${RELOAD_READY_TIMEOUT_MS} ms`)),
      RELOAD_READY_TIMEOUT_MS,
    );
    this.retiring.add(gen); // watched (and stopped by stop()) while it starts
    for (let i = 0; i < this.opts.workers; i++) {
      const slot = new Slot(i, gen);
      gen.slots.push(slot);
      this.spawn(slot, this.handOver(old.slots[i]));
    }
    if (this.addresses.length === 0) gen.starting!.ready();
    try {
      await ready;
    } catch (e) {
      // 3a. It failed: stop what it started (closing what it holds), the old version serves on.
      clearTimeout(timer);
      gen.starting = null;
      gen.retired = true;
      await Promise.all(gen.slots.map((s) => this.stopSlot(s)));
      this.retiring.delete(gen);
      this.keepTotals(gen);
      throw this.stopping ? refuse('it was stopped during the reload') : e;
    } finally {
      clearTimeout(timer);
    }
    gen.starting = null;
    this.retiring.delete(gen);
    // The sockets handed over that the new instances took (a cell still set: not taken).
    for (const s of gen.slots) {
      const inc = s.current;
      if (inc?.inherited) this.reloadCounts.listenersHandedOver += inc.inheritedCount - inc.inherited.filter((fd) => fd >= 0).length;
    }
    if (this.stopping) {
      // stop() came while it started: it has stopped these instances too.
      throw refuse('it was stopped during the reload');
    }
    // Live handover: a new instance opts in (handover.adopt) right after it
    // listens, before its first wait; known here before the old one drains.
    await this.firstWaits(gen);
    // 3b. Ready: it serves; the old version drains.
    this.gen = gen;
    if (policy.maxConnections !== old.policy.maxConnections) this.promiseDescriptors(this.opts.workers * policy.maxConnections);
    this.readyResolve(); // (a reload before the first version got ready: the new one is)
    this.reloadCounts.done++;
    const readyMs = Math.round(performance.now() - t0);
    const open = old.slots.reduce((n, s) => n + (s.current?.stats[STAT_OPEN] ?? 0), 0);
    this.log(
      'info',
      `reload: version ${gen.number} (sha256 ${gen.sha256}) ready in ${readyMs} ms; version ${old.number} drains ${open} connection(s) (up to ${drainMs} ms)`,
    );
    if (this.opts.record !== undefined && open > 0) {
      this.log('info', `reload: no live handover while recording (--record): version ${old.number}'s connections drain`);
    }
    const record = {
      generation: old.number,
      sha256: old.sha256,
      connections: open,
      cut: null as number | null,
      handedOver: 0,
      handoverFailed: 0,
    };
    this.reloadCounts.drained.push(record);
    if (this.reloadCounts.drained.length > 100) this.reloadCounts.drained.shift();
    this.retiring.add(old);
    // Told to drain; resolved once each old instance has closed its listeners
    // (new connections go to the new version only from then on).
    const retired = this.retire(old, drainMs);
    await this.listenersClosed(old);
    const drained = retired.then((cut) => {
      record.cut = cut;
      this.log(
        'info',
        `reload: version ${old.number} ended; ${Math.max(0, open - cut - record.handedOver - record.handoverFailed)} of its ${open} connection(s) finished` +
          (record.handedOver + record.handoverFailed > 0
            ? `, ${record.handedOver} moved to version ${gen.number} (${record.handoverFailed} handover(s) failed)`
            : '') +
          (cut > 0 ? `, ${cut} closed at the drain timeout` : ''),
      );
      return { connections: open };
    });
    return { generation: gen.number, sha256: gen.sha256, readyMs, drained };
  }

  // Duplicates the listening sockets of `from`'s incarnation (while it still
  // holds them) for the next version's instance of the same index: the
  // socket stays in its SO_REUSEPORT group through the reload, so the
  // connections queued on it are accepted by the new instance instead of
  // being reset. Null when there is nothing to hand over (iocp: the
  // reserved socket is shared anyway; an address it did not listen on).
  private handOver(from: Slot | undefined): SharedArrayBuffer | null {
    const inc = from?.current;
    if (!inc || inc.exitReason !== null || !inc.listenerFds.some((fd) => fd >= 0)) return null;
    const buf = new SharedArrayBuffer(this.addresses.length * 8);
    const cells = new Float64Array(buf).fill(-1);
    let any = false;
    inc.listenerFds.forEach((fd, i) => {
      if (fd < 0) return;
      const copy = this.opts.backend.inherit(fd, this.addresses[i]!);
      if (copy >= 0) {
        cells[i] = copy;
        any = true;
      } else {
        this.log(
          'debug',
          `reload: the listener on ${this.addresses[i]} was not handed over (no longer listening); the new instance listens afresh`,
          from!.index,
        );
      }
    });
    return any ? buf : null;
  }

  // Until every running instance of `gen` has reached poll.wait once (at
  // most FIRST_WAIT_MS), then one more turn for the messages it posted before.
  private async firstWaits(gen: Generation): Promise<void> {
    const deadline = performance.now() + FIRST_WAIT_MS;
    const busy = () =>
      gen.slots.some((s) => {
        const c = s.current;
        return (
          c !== null && c.exitReason === null && (Atomics.load(c.control, CTRL_RUN_SEQ) < 1 || charged(Atomics.load(c.control, CTRL_STATE)))
        );
      });
    while (busy() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 2));
  }

  // Live handover: the old version's instances may give connections
  // accepted on the addresses where an instance of the serving version
  // adopts (CTRL_HANDOVER; set before CTRL_DRAIN, and again as new
  // instances opt in).
  private allowHandover(old: Generation): void {
    const mask = this.gen === old ? 0 : this.gen.slots.reduce((m, s) => m | (s.current?.adopting ?? 0), 0);
    for (const s of old.slots) if (s.current) Atomics.or(s.current.control, CTRL_HANDOVER, mask);
  }

  // A connection an old instance gave (one of a batch, posted per target by
  // the caller): to the serving version's instance of
  // the same index if it adopts on that address, else the next one that
  // does (round robin); recorded in its incoming cell before the message,
  // so that at every step one record names the socket. No taker: closed.
  private routeHandover(
    from: Slot,
    inc: Incarnation,
    cell: number,
    listen: number,
    state: Uint8Array,
    batches: Map<Incarnation, AdoptMessage['batch']>,
    peer?: AddressData,
  ): void {
    const fd = inc.outgoing ? Atomics.exchange(inc.outgoing, cell, -1) : -1;
    if (fd < 0) return; // the thread is gone and onGone closed it (counted there)
    const takes = (s: Slot) => {
      const c = s.current;
      return c !== null && c.exitReason === null && c.incoming !== null && (c.adopting & (1 << listen)) !== 0 ? c : null;
    };
    const slots = this.gen.slots;
    let target = slots[from.index] && slots[from.index]!.gen !== from.gen ? takes(slots[from.index]!) : null;
    for (let i = 0; target === null && i < slots.length && this.gen !== from.gen; i++) {
      target = takes(slots[this.handoverNext++ % slots.length]!);
    }
    let at = -1;
    if (target !== null) {
      const cells = target.incoming!;
      for (let i = 0; i < cells.length && at < 0; i++) if (Atomics.compareExchange(cells, i, -1, fd) === -1) at = i;
    }
    if (target === null || at < 0) {
      this.settle(from.gen.number);
      this.opts.backend.closeDescriptor(fd);
      this.countHandover(from.gen.number, false);
      this.log(
        'warn',
        `handover: a connection of version ${from.gen.number} closed: no instance of version ${this.gen.number} could take it`,
        from.index,
      );
      return;
    }
    const batch = batches.get(target) ?? [];
    batch.push({ cell: at, listen, state, from: from.gen.number, ...(peer && { peer }) });
    batches.set(target, batch);
  }

  private settle(from: number): void {
    this.settledGiven.set(from, (this.settledGiven.get(from) ?? 0) + 1);
  }

  // The connections `inc` gave since its guest's last wait, routed as one
  // batch: one message per instance that takes some.
  private routeBatch(slot: Slot, inc: Incarnation): void {
    const batches = new Map<Incarnation, AdoptMessage['batch']>();
    for (const g of inc.giving) this.routeHandover(slot, inc, g.cell, g.listen, g.state, batches, g.peer);
    inc.giving = [];
    for (const [target, batch] of batches) {
      target.worker.postMessage({ type: 'adopt', batch } satisfies AdoptMessage);
      Atomics.add(target.control, CTRL_ADOPT_SEQ, 1);
      if (target.wakeTarget >= 0) this.opts.backend.wake(target.wakeTarget);
    }
  }

  private countHandover(from: number, ok: boolean): void {
    const r = this.reloadCounts;
    const d = r.drained.find((x) => x.generation === from);
    if (ok) {
      r.handoversDone++;
      if (d) d.handedOver++;
    } else {
      r.handoversFailed++;
      if (d) d.handoverFailed++;
    }
  }

  // Until every instance of `gen` that still runs has closed its listeners
  // (CTRL_DRAIN is DRAIN_DONE), at most LISTENERS_CLOSED_MS: a guest busy
  // outside poll.wait closes them at its next wait.
  private async listenersClosed(gen: Generation, deadline = performance.now() + LISTENERS_CLOSED_MS): Promise<void> {
    const open = () =>
      gen.slots.some(
        (s) => s.current !== null && s.current.exitReason === null && Atomics.load(s.current.control, CTRL_DRAIN) !== DRAIN_DONE,
      );
    while (open() && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  }

  // Drains a replaced version: its instances close their descriptors of the
  // listeners (the sockets live on in the new version's instances), their
  // guests see the listeners hang up, and they serve their open
  // connections until these have closed or `timeoutMs` has passed; then
  // they stop. Resolves with how many connections were cut at the timeout.
  private async retire(gen: Generation, timeoutMs: number): Promise<number> {
    gen.retired = true;
    const deadline = performance.now() + timeoutMs;
    this.allowHandover(gen);
    for (const slot of gen.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
      const inc = slot.current;
      if (!inc) continue;
      Atomics.store(inc.control, CTRL_DRAIN, 1);
      if (inc.wakeTarget >= 0 && inc.exitReason === null) this.opts.backend.wake(inc.wakeTarget);
    }
    const openNow = () => gen.slots.reduce((n, s) => n + (s.current && s.current.exitReason === null ? s.current.stats[STAT_OPEN]! : 0), 0);
    // Its connections handed over count as ended once adopted (or closed) there: the summary line counts them.
    const given = () =>
      gen.slots.reduce(
        (n, s) => n + s.totals[STAT_GIVEN]! + (s.current && s.current.exitReason === null ? s.current.stats[STAT_GIVEN]! : 0),
        0,
      );
    const moving = () => given() > (this.settledGiven.get(gen.number) ?? 0);
    while (performance.now() < deadline && !this.stopping && (openNow() > 0 || moving())) await new Promise((r) => setTimeout(r, 10));
    this.settledGiven.delete(gen.number);
    const cut = openNow();
    await Promise.all(gen.slots.map((s) => this.stopSlot(s)));
    this.maybeRetired(gen);
    return cut;
  }

  /** Resolves when every instance's thread has ended (by itself or through stop()). */
  async finished(): Promise<void> {
    await this.done;
  }

  /**
   * Drains, then stops: every instance closes its listeners (no new
   * connections; the guest's listener registrations report hang-up and
   * accept says would-block) and keeps serving its open connections until they
   * have all closed or `timeoutMs` has passed.
   */
  async drain(timeoutMs: number): Promise<void> {
    if (this.stopping) return this.stopping;
    this.draining = true;
    const deadline = performance.now() + timeoutMs;
    // No new connections from here on: the instances close their listeners;
    // the reservations go now too (on IOCP the listeners are duplicates of
    // the reserved socket, which stays open while any handle to it does).
    this.reservations.forEach((fd) => this.opts.backend.closeDescriptor(fd));
    this.reservations.length = 0;
    this.gen.retired = true;
    for (const slot of this.allSlots()) {
      const inc = slot.current;
      if (!inc) continue;
      Atomics.store(inc.control, CTRL_DRAIN, DRAIN_STOP);
      if (inc.wakeTarget >= 0 && inc.exitReason === null) this.opts.backend.wake(inc.wakeTarget);
    }
    // Open counts mean something once the listeners are closed: until then
    // an instance may still take the connections queued on them.
    await this.listenersClosed(this.gen, Math.min(deadline, performance.now() + LISTENERS_CLOSED_MS));
    while (performance.now() < deadline && !this.stopping) {
      if (this.stats().every((s) => !s.running || s.open === 0)) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.stop();
  }

  /**
   * Stops every instance: each is woken out of `poll.wait` through its
   * backend's waker and unwinds; one that does not end within
   * stopTimeoutMs (a guest spinning outside wait) has its thread terminated.
   * Then every descriptor is closed. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  // Stops one slot's incarnation: woken to unwind, terminated past stopTimeoutMs.
  private async stopSlot(slot: Slot): Promise<void> {
    if (slot.restartTimer) clearTimeout(slot.restartTimer);
    slot.restartTimer = null;
    const inc = slot.current;
    if (!inc) return;
    Atomics.store(inc.control, CTRL_STOP, 1);
    if (inc.wakeTarget >= 0 && inc.exitReason === null) this.opts.backend.wake(inc.wakeTarget);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      inc.gone.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), this.opts.stopTimeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.log('warn', `did not stop within ${this.opts.stopTimeoutMs} ms; terminating its thread`, slot.index);
      inc.exitReason ??= 'stopped';
      this.kill(slot, inc);
      await inc.gone;
    }
  }

  private async doStop(): Promise<void> {
    const { backend } = this.opts;
    clearInterval(this.watchdog);
    await Promise.all(this.allSlots().map((slot) => this.stopSlot(slot)));
    this.reservations.forEach((fd) => backend.closeDescriptor(fd));
    this.reservations.length = 0;
    this.doneResolve();
  }
}

/** How long a reload's new version has to listen on every address. */
const RELOAD_READY_TIMEOUT_MS = 10_000;
/** How long a reload waits for the old instances to close their listeners before it resolves anyway. */
const LISTENERS_CLOSED_MS = 1000;

function sameGroups(a: SocketAddress, d: AddressData): boolean {
  return d.groups.every((g, i) => a.groups[i] === g);
}

// The memory and table caps live in the module: the capped copy is compiled once for all instances of a version.
async function compileCapped(plugin: LoadedPlugin, policy: Policy): Promise<WebAssembly.Module> {
  const capped = capModule(plugin.info.mainModule.bytes, {
    maxMemoryBytes: policy.maxMemoryMiB * MIB,
    maxTableElements: policy.maxTableElements,
  });
  return WebAssembly.compile(capped as Uint8Array<ArrayBuffer>);
}
