/**
 * Runs one plugin: N instances, each in its own worker thread, all serving
 * the same listen addresses. Lives on the main thread and never blocks it.
 */
import { Worker } from 'node:worker_threads';
import { WasmuxError } from '../errors.js';
import { SocketAddress } from '../backends/address.js';
import type { BackendModule, BackendName } from '../backends/backend.js';
import { registryBytes } from '../sandbox/handle-table.js';
import { CTRL_COUNT, CTRL_STOP, STAT_ACCEPTED, STAT_BYTES_IN, STAT_BYTES_OUT, STAT_COUNT, STAT_EVENTS,
  STAT_OPEN, STAT_WAITS } from '../wit/context.js';
import { ERROR_CODE_NAMES, codeOf } from '../wit/error-code.js';
import type { LoadedPlugin } from '../loader/plugin.js';
import type { Logger } from './logger.js';
import type { AddressData, ExitReason, WorkerInput, WorkerMessage } from '../worker/protocol.js';

const WORKER_URL = new URL('../worker/main.js', import.meta.url);

export interface PluginServerOptions {
  listen: readonly SocketAddress[];
  workers: number;
  config: string;
  backend: BackendModule;
  logger: Logger;
  /** Handles per instance (listeners and connections). */
  maxHandles: number;
  maxEventsPerWait: number;
  maxRecvBytes: number;
  /** How long `stop()` waits for an instance to end before terminating its thread. */
  stopTimeoutMs: number;
}

export interface InstanceStats {
  instance: number;
  running: boolean;
  accepted: number;
  open: number;
  bytesIn: number;
  bytesOut: number;
  events: number;
  waits: number;
}

class Instance {
  readonly control = new Int32Array(new SharedArrayBuffer(CTRL_COUNT * 4));
  readonly stats = new Float64Array(new SharedArrayBuffer(STAT_COUNT * 8));
  readonly registry: SharedArrayBuffer;
  readonly worker: Worker;
  wakeTarget = -1;
  exitReason: ExitReason | null = null;
  listening = 0;
  readonly gone: Promise<void>;

  constructor(readonly index: number, input: Omit<WorkerInput, 'control' | 'stats' | 'registry' | 'instance'>, maxHandles: number) {
    this.registry = new SharedArrayBuffer(registryBytes(maxHandles));
    const data: WorkerInput = { ...input, instance: index, control: this.control.buffer as SharedArrayBuffer,
      stats: this.stats.buffer as SharedArrayBuffer, registry: this.registry };
    this.worker = new Worker(WORKER_URL, { workerData: data, stdout: false, stderr: false });
    this.gone = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }
}

export class PluginServer {
  readonly name: string;
  /** The I/O backend every instance uses. */
  readonly backend: BackendName;
  /** The addresses served, with port 0 resolved. */
  readonly addresses: readonly SocketAddress[];
  private readonly instances: Instance[] = [];
  private readonly reservations: number[] = [];
  private stopping: Promise<void> | null = null;
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  /** Resolves once every instance listens on every address; rejects if one ends first. */
  readonly ready: Promise<void>;

  private constructor(readonly plugin: LoadedPlugin, private readonly opts: PluginServerOptions, addresses: SocketAddress[]) {
    this.name = plugin.name;
    this.backend = opts.backend.name;
    this.addresses = addresses;
    this.ready = new Promise((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.catch(() => {}); // observed through `ready` or `start`
  }

  static async start(plugin: LoadedPlugin, opts: PluginServerOptions): Promise<PluginServer> {
    const { backend } = opts;
    // Reserve every address first: port 0 becomes a concrete port that all
    // instances share, and a port in use fails here, clearly, before any
    // guest runs.
    const resolved: SocketAddress[] = [];
    const reservations: number[] = [];
    for (const addr of opts.listen) {
      const out = new SocketAddress();
      const fd = backend.reserve(addr, out);
      if (fd < 0) {
        reservations.forEach((r) => backend.closeDescriptor(r));
        throw new WasmuxError('WASMUX_ERR_LISTEN', `cannot listen on ${addr}: ${ERROR_CODE_NAMES[codeOf(fd)]}`);
      }
      reservations.push(fd);
      resolved.push(out);
    }
    const server = new PluginServer(plugin, opts, resolved);
    server.reservations.push(...reservations);
    for (let i = 0; i < opts.workers; i++) server.spawn(i);
    if (opts.listen.length === 0) server.readyResolve();
    return server;
  }

  private spawn(index: number): void {
    const o = this.opts;
    const inst = new Instance(index, {
      plugin: this.name,
      module: this.plugin.module,
      backend: o.backend.name,
      config: o.config,
      listen: this.addresses.map((a): AddressData => ({ v6: a.v6, groups: Array.from(a.groups), port: a.port })),
      sharedListen: true,
      limits: { maxEventsPerWait: o.maxEventsPerWait, maxRecvBytes: o.maxRecvBytes, maxBacklog: 4096 },
    }, o.maxHandles);
    this.instances[index] = inst;
    inst.worker.on('message', (m: WorkerMessage) => this.onMessage(inst, m));
    inst.worker.on('error', (e) => {
      this.log('error', `instance ${index} crashed: ${e.message}`, index);
      inst.exitReason ??= 'crashed';
    });
    inst.gone.then(() => this.onGone(inst));
  }

  private onMessage(inst: Instance, m: WorkerMessage): void {
    switch (m.type) {
      case 'started':
        inst.wakeTarget = m.wakeTarget;
        // A stop requested before the worker could be woken.
        if (this.stopping) this.opts.backend.wake(inst.wakeTarget);
        break;
      case 'log':
        this.opts.logger({ level: m.level, source: this.name, instance: inst.index, message: m.message });
        break;
      case 'listening': {
        inst.listening++;
        const a = new SocketAddress();
        a.v6 = m.address.v6;
        a.groups.set(m.address.groups);
        a.port = m.address.port;
        this.log('debug', `listening on ${a}`, inst.index);
        if (this.instances.every((i) => i && i.listening >= this.addresses.length)) this.readyResolve();
        break;
      }
      case 'exit':
        inst.exitReason = m.reason;
        if (m.reason === 'stopped') break;
        if (m.reason === 'returned') this.log('info', 'run returned', inst.index);
        else this.log('error', `${m.reason}: ${m.message}`, inst.index);
        this.readyReject(new WasmuxError('WASMUX_ERR_PLUGIN_FAILED',
          `plugin ${this.name} instance ${inst.index} ended before it was ready (${m.reason}${m.message ? `: ${m.message}` : ''})`));
        break;
    }
  }

  // The thread is gone: close every descriptor it still had (its backend's,
  // and any socket it could not close itself).
  private onGone(inst: Instance): void {
    const fds = new Float64Array(inst.registry);
    for (let i = 0; i < fds.length; i++) {
      if (fds[i]! >= 0) {
        this.opts.backend.closeDescriptor(fds[i]!);
        fds[i] = -1;
      }
    }
    inst.stats[STAT_OPEN] = 0;
    if (inst.exitReason === null) {
      inst.exitReason = 'crashed';
      this.log('error', 'instance thread ended without reporting', inst.index);
    }
  }

  private log(level: 'debug' | 'info' | 'warn' | 'error', message: string, instance?: number): void {
    this.opts.logger({ level, source: this.name, instance, message });
  }

  stats(): InstanceStats[] {
    return this.instances.map((inst) => ({
      instance: inst.index,
      running: inst.exitReason === null,
      accepted: inst.stats[STAT_ACCEPTED]!,
      open: inst.stats[STAT_OPEN]!,
      bytesIn: inst.stats[STAT_BYTES_IN]!,
      bytesOut: inst.stats[STAT_BYTES_OUT]!,
      events: inst.stats[STAT_EVENTS]!,
      waits: inst.stats[STAT_WAITS]!,
    }));
  }

  /** How each instance ended (null: still running). */
  exitReasons(): (ExitReason | null)[] {
    return this.instances.map((i) => i.exitReason);
  }

  /** Resolves when every instance's thread has ended (by itself or through stop()). */
  async finished(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.gone));
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

  private async doStop(): Promise<void> {
    const { backend } = this.opts;
    await Promise.all(this.instances.map(async (inst) => {
      Atomics.store(inst.control, CTRL_STOP, 1);
      if (inst.wakeTarget >= 0 && inst.exitReason === null) backend.wake(inst.wakeTarget);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        inst.gone.then(() => false),
        new Promise<boolean>((r) => { timer = setTimeout(() => r(true), this.opts.stopTimeoutMs); }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.log('warn', `did not stop within ${this.opts.stopTimeoutMs} ms; terminating its thread`, inst.index);
        await inst.worker.terminate();
        await inst.gone;
      }
    }));
    this.reservations.forEach((fd) => backend.closeDescriptor(fd));
    this.reservations.length = 0;
  }
}
