/**
 * simulate(): one plugin instance on a simulated network (network.ts),
 * driven by a scenario, in this thread.
 *
 * The guest runs synchronously and blocks only in `poll.wait`, which reaches
 * the network's wait. Whenever the guest has nothing ready there (it is
 * "quiet"), the scenario, a generator function, runs to its next `yield`:
 * it opens client connections, writes, reads what arrived, closes, and
 * yields to let the plugin run until it is quiet again (`yield`), or to let
 * virtual time pass (`yield net.sleep(ms)`). When the scenario returns, the
 * host stops the instance as a real stop does (its StopSignal out of
 * `poll.wait`); when it throws, the seed has failed.
 *
 * Determinism: the guest is a deterministic program given what the host
 * tells it, and everything the host tells it (events, accepted and connected
 * sockets, bytes read, send counts, errors, both clocks) comes from the
 * network, the virtual clock and the seed (random.ts). Same plugin, scenario,
 * seed and faults: the same transcript, byte for byte.
 */
import { SocketAddress } from '../backends/address.js';
import { WasmuxError } from '../errors.js';
import { loadPlugin, type LoadedPlugin } from '../loader/plugin.js';
import { Gate } from '../sandbox/gate.js';
import { HandleTable, newRegistry } from '../sandbox/handle-table.js';
import { InstanceHost, type LogLevel, type LogOrigin } from '../sandbox/instance-host.js';
import { LOG_BURST, LOG_SHARED_SLOTS, LogLimiter } from '../sandbox/log-limiter.js';
import { MetricsStore, metricValuesBuffer, type MetricSample } from '../sandbox/metrics.js';
import { capModule } from '../sandbox/module-limits.js';
import { MIB, buildPolicy, instanceKnobs, ruleAllows, type Policy, type PolicyInput } from '../sandbox/policy.js';
import { CTRL_COUNT, CTRL_STOP, STAT_COUNT, STAT_LOG } from '../sandbox/shared.js';
import { describeEnd, type ExitReason } from '../sandbox/traps.js';
import { GuestMemory, memoryNote } from '../wit/guest-memory.js';
import { PluginInstance } from '../wit/instance.js';
import { SIM_START_MS, VirtualClock } from './clock.js';
import { type AppliedFault, type FaultPlan, formatFaults, NO_FAULTS, parseFaults } from './faults.js';
import { type SimClient, type SimDriver, type SimListener, SimNetwork } from './network.js';
import { Random } from './random.js';

export type { SimClient, SimListener } from './network.js';

/** What a scenario yields: nothing (run the plugin until it is quiet), or a sleep (net.sleep). */
export type ScenarioStep = undefined | { readonly sleepMs: number };
/** A scenario: a generator function over the simulated network. It throws to fail the seed. */
export type Scenario = (net: Net) => Generator<ScenarioStep, void, void>;

/** The scenario's view of the simulation. */
export interface Net {
  readonly seed: number;
  /** The scenario's stream of the seed (random.ts): its draws are the same with or without faults. */
  readonly random: Random;
  /** Where the plugin was told to listen. */
  readonly listen: readonly SocketAddress[];
  /** Every log line so far (the host's and the guest's). */
  readonly logs: readonly { level: LogLevel; origin: LogOrigin; message: string }[];
  /** Connects a client to `to` ("host:port", a port on the first listen address's host, or, by default, the first listen address). */
  connect(to?: string | number): SimClient;
  /**
   * The scenario's listener on `addr`, for the plugin's outbound connects (allow them in the policy's
   * connect rules): one made before the plugin started (SimOptions.peers), or a new one.
   */
  listenAt(addr: string): SimListener;
  /** `yield net.sleep(ms)`: lets `ms` of virtual time pass, the plugin running meanwhile. */
  sleep(ms: number): ScenarioStep;
  /** Virtual monotonic time, ms. */
  now(): number;
  /** `yield* net.until(pred, ms)`: runs the plugin (and virtual time, in steps of 10 ms) until pred() or `ms` passed; returns pred(). */
  until(pred: () => boolean, timeoutMs: number): Generator<ScenarioStep, boolean, void>;
  /** Adds a line to the transcript. */
  note(text: string): void;
  /**
   * The plugin's own metrics (wit/metrics.wit) now: every series. The SDK
   * reports its updates before each wait, so while the scenario runs (the
   * plugin is quiet, in its wait) they are all here.
   */
  metrics(): MetricSample[];
  /** One series' value (a histogram's: its count), by metric name and the plugin's labels; undefined: no such series. */
  metric(name: string, labels?: Record<string, string>): number | undefined;
}

export type { MetricSample } from '../sandbox/metrics.js';

export interface SimOptions {
  readonly scenario: Scenario;
  /** The seed (a u32). Default 1. */
  readonly seed?: number;
  /** A faults spec (faults.ts) or a parsed plan. Default: none. */
  readonly faults?: string | FaultPlan;
  /** The plugin's policy (as for serve()); a plugin from prepareSimulation() keeps the one it was prepared with. */
  readonly policy?: PolicyInput;
  /** Addresses the plugin is told to listen on (virtual). Default ["127.0.0.1:8080"]. */
  readonly listen?: readonly string[];
  /** Addresses the scenario listens on from the start, for the plugin's outbound connects (net.listenAt). */
  readonly peers?: readonly string[];
  /** ctx.config. Default "". */
  readonly config?: string;
  /** Bytes each direction of a connection holds. Default 64 KiB. */
  readonly pipeBytes?: number;
  /** Cap on one recv. Default 1 MiB, as serve(). */
  readonly maxRecvBytes?: number;
  /**
   * Waits without the plugin going quiet before the run is a failure: it spins on events, or polls
   * with a zero timeout (which never lets the scenario run: the network moves while the plugin blocks).
   * Default 100,000.
   */
  readonly maxBusyWaits?: number;
  /** Virtual time after which the run is a failure. Default 1 hour. */
  readonly maxVirtualMs?: number;
}

export interface SimResult {
  readonly seed: number;
  /** The faults spec the run used. */
  readonly faults: string;
  /** Every fault applied: which, at which step, on which connection. */
  readonly applied: readonly AppliedFault[];
  /** Every event, one per line. */
  readonly transcript: string;
  readonly end: { readonly reason: ExitReason; readonly message: string | null };
  /** Why the seed failed (the scenario threw, the plugin trapped or ended early, a guard), or null. */
  readonly failure: string | null;
  /** How many backend calls the run made. */
  readonly steps: number;
  /** The plugin's own metrics at the end of the run (Net.metrics). */
  readonly metrics: readonly MetricSample[];
}

/** A plugin compiled for simulation (its memory and table caps written in): compile once, simulate many seeds. */
export interface SimPlugin {
  readonly name: string;
  readonly module: WebAssembly.Module;
  readonly policy: Policy;
}

const DEFAULT_LISTEN = '127.0.0.1:8080';

/** Text from the guest or the scenario as one transcript line: control characters escaped (\n, \xNN). */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escaping them is the point
  return text.replace(/[\x00-\x1f\x7f\\]/g, (ch) =>
    ch === '\n' ? '\\n' : ch === '\\' ? '\\\\' : `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

function addressOf(text: string): SocketAddress {
  const a = SocketAddress.parse(text);
  if (a === null) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `"${text}" is not an address (expected host:port)`);
  return a;
}

/** Loads and compiles a plugin for simulate() under `policy`. */
export async function prepareSimulation(plugin: string | LoadedPlugin, policy: PolicyInput = {}): Promise<SimPlugin> {
  const loaded = typeof plugin === 'string' ? await loadPlugin(plugin) : plugin;
  const p = buildPolicy([{ where: 'policy', input: policy }]);
  const capped = capModule(loaded.info.mainModule.bytes, { maxMemoryBytes: p.maxMemoryMiB * MIB, maxTableElements: p.maxTableElements });
  const module = await WebAssembly.compile(capped as Uint8Array<ArrayBuffer>);
  return { name: loaded.name, module, policy: p };
}

/**
 * Runs `opts.scenario` against a plugin (a path, a loaded plugin, or one
 * prepared once for many seeds), in this thread: a guest that never comes
 * back to `poll.wait` (a loop in a handler) blocks it for good. `wasmux test`
 * runs each seed in a worker with a wall-clock budget instead (runner.ts).
 */
export async function simulate(opts: SimOptions & { plugin: string | LoadedPlugin | SimPlugin }): Promise<SimResult> {
  const p = opts.plugin;
  const plugin = typeof p !== 'string' && 'policy' in p ? p : await prepareSimulation(p, opts.policy);
  return runSimulation(plugin, opts);
}

class Driver implements SimDriver {
  sleepUntil: number | null = null;
  stopping = false;
  failure: string | null = null;
  done = false;
  private busyWaits = 0;
  private quietsInWait = 0;

  constructor(
    private readonly gen: Generator<ScenarioStep, void, void>,
    private readonly net: SimNetwork,
    private readonly clock: VirtualClock,
    private readonly control: Int32Array,
    private readonly maxBusyWaits: number,
    private readonly maxVirtualMs: number,
  ) {}

  stop(failure: string | null): void {
    if (failure !== null && this.failure === null) {
      this.failure = failure;
      this.net.note(`FAILURE: ${failure}`);
    }
    this.stopping = true;
    Atomics.store(this.control, CTRL_STOP, 1);
  }

  fail(why: string): void {
    this.stop(why);
  }

  step(): void {
    this.quietsInWait = 0;
    if (this.stopping) return;
    if (++this.busyWaits > this.maxBusyWaits) {
      this.stop(`the plugin did not go quiet in ${this.maxBusyWaits} waits (it keeps finding events, or polls without blocking)`);
    } else if (this.clock.nowMs() - SIM_START_MS > this.maxVirtualMs) {
      this.stop(`the simulation ran past ${this.maxVirtualMs} ms of virtual time`);
    }
  }

  quiet(): void {
    this.busyWaits = 0;
    if (++this.quietsInWait > 10_000) {
      this.stop('the scenario yielded 10,000 times with nothing happening in between');
      return;
    }
    let r: IteratorResult<ScenarioStep, void>;
    try {
      r = this.gen.next();
    } catch (e) {
      this.stop(`the scenario failed: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (r.done) {
      this.done = true;
      this.net.note('scenario done');
      this.stop(null);
      return;
    }
    const step = r.value;
    if (step !== undefined) {
      if (!(step.sleepMs >= 0)) {
        this.stop(`the scenario yielded ${JSON.stringify(step)}: yield nothing, or net.sleep(ms)`);
        return;
      }
      this.sleepUntil = this.clock.nowMs() + step.sleepMs;
    }
  }
}

/** Runs one seed, synchronously, in this thread. */
export function runSimulation(plugin: SimPlugin, opts: SimOptions): SimResult {
  const seed = (opts.seed ?? 1) >>> 0;
  const plan = typeof opts.faults === 'string' ? parseFaults(opts.faults) : (opts.faults ?? NO_FAULTS);
  // One seed, one stream per kind of choice (random.ts).
  const random = Random.stream(seed, 0);
  const clock = new VirtualClock();
  const lines: string[] = [];
  const net = new SimNetwork({
    decisions: Random.stream(seed, 1),
    random,
    clock,
    faults: plan,
    pipeBytes: opts.pipeBytes,
    record: (l) => lines.push(l),
  });
  const listen = (opts.listen ?? [DEFAULT_LISTEN]).map(addressOf);
  const policy = plugin.policy;
  const connectRules = policy.connect;
  const control = new Int32Array(new SharedArrayBuffer(CTRL_COUNT * 4));
  const stats = new Float64Array(new SharedArrayBuffer(STAT_COUNT * 8));
  const logs: { level: LogLevel; origin: LogOrigin; message: string }[] = [];
  const log = (level: LogLevel, origin: LogOrigin, message: string) => {
    logs.push({ level, origin, message });
    net.note(`log ${level} ${origin}: ${oneLine(message)}`);
  };
  const logLimit = new LogLimiter(
    stats.subarray(STAT_LOG, STAT_LOG + LOG_SHARED_SLOTS),
    { tokens: LOG_BURST, at: clock.nowMs() },
    (message) => log('warn', 'host', message),
    () => clock.nowMs(),
    0,
  );
  const gate = new Gate(control, stats);
  // The plugin's metrics, as a worker keeps them (no supervisor to tell of definitions).
  const metrics = new MetricsStore(policy.metricSeries, new Float64Array(metricValuesBuffer(policy.metricSeries)), {
    defined() {},
    seriesAdded() {},
    capReached() {},
  });
  const mem = new GuestMemory();
  const table = new HandleTable(newRegistry(policy.maxConnections + listen.length + 64), Random.stream(seed, 2).next());
  const host = new InstanceHost({
    table,
    backend: net.backend(),
    limits: {
      ...instanceKnobs(policy),
      // As serve(): the plugin may listen where it is told, and wherever its policy lists.
      listen: [...listen, ...policy.listen.filter((p) => !listen.some((a) => a.equals(p)))],
      connectAllowed: (addr) => connectRules.some((r) => ruleAllows(r, addr)),
      maxRecvBytes: opts.maxRecvBytes ?? 1 << 20,
      maxBacklog: 4096,
      sharedListen: false,
      // The simulated network has no peek: InstanceHost refuses proxyProtocol there, said at once.
      proxyProtocol: policy.proxyProtocol,
    },
    stats,
    control,
    gate,
    logLimit,
    time: clock,
    log,
    listening: () => {},
    metrics,
  });

  const scenarioNet: Net = {
    seed,
    random: Random.stream(seed, 3),
    listen,
    logs,
    connect(to) {
      let addr = listen[0]?.clone() ?? addressOf(DEFAULT_LISTEN);
      if (typeof to === 'number') addr.port = to;
      else if (typeof to === 'string') addr = addressOf(to);
      return net.clientConnect(addr);
    },
    listenAt: (addr) => net.clientListen(addressOf(addr)),
    sleep: (ms) => ({ sleepMs: ms }),
    now: () => clock.nowMs(),
    *until(pred, timeoutMs) {
      const end = clock.nowMs() + timeoutMs;
      for (let i = 0; i < 1_000_000; i++) {
        yield;
        if (pred()) return true;
        if (clock.nowMs() >= end) return false;
        yield { sleepMs: Math.min(10, end - clock.nowMs()) };
        if (pred()) return true;
      }
      return false;
    },
    note: (text) => net.note(`scenario: ${oneLine(text)}`),
    metrics: () => metrics.samples(),
    metric(name, labels = {}) {
      const want = Object.entries(labels);
      return metrics
        .samples()
        .find((m) => m.name === name && want.length === Object.keys(m.labels).length && want.every(([k, v]) => m.labels[k] === v))?.value;
    },
  };
  const driver = new Driver(opts.scenario(scenarioNet), net, clock, control, opts.maxBusyWaits ?? 100_000, opts.maxVirtualMs ?? 3_600_000);
  net.driver = driver;
  const faults = formatFaults(plan);
  net.note(`simulation: seed ${seed}, faults ${faults}, plugin ${plugin.name}, listen ${listen.join(' ')}`);
  for (const peer of opts.peers ?? []) net.clientListen(addressOf(peer));

  let reason: ExitReason;
  let message: string | null;
  try {
    const instance = new PluginInstance(plugin.module, { mem, host }, gate);
    instance.initialize();
    message = instance.run({ config: opts.config ?? '', listen, instance: 0 });
    reason = message === null ? 'returned' : 'failed';
  } catch (e) {
    ({ reason, message } = describeEnd(e, () => memoryNote(mem, policy.maxMemoryMiB)));
  }
  if (gate.closing()) host.closeAll();
  net.note(`end: ${reason}${message === null ? '' : `: ${message}`}`);
  let failure = driver.failure;
  if (failure === null && !driver.done) {
    failure =
      reason === 'returned'
        ? "the plugin's run returned before the scenario finished"
        : `the plugin ${reason} before the scenario finished${message === null ? '' : `: ${message}`}`;
    net.note(`FAILURE: ${failure}`);
  }
  return {
    seed,
    faults,
    applied: net.applied,
    transcript: `${lines.join('\n')}\n`,
    end: { reason, message },
    failure,
    steps: net.steps,
    metrics: metrics.samples(),
  };
}
