/**
 * A plugin instance's thread: opens a backend, instantiates the guest with
 * the glue, runs it, and reports how it ended. The guest blocks this thread
 * inside `poll.wait`; the supervisor ends that wait through the backend's
 * waker.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { SocketAddress } from '../backends/address.js';
import { loadBackend } from '../backends/index.js';
import { HandleTable } from '../sandbox/handle-table.js';
import { InstanceHost } from '../sandbox/instance-host.js';
import { GuestMemory, memoryNote } from '../wit/guest-memory.js';
import { PluginInstance } from '../wit/instance.js';
import { describeEnd, type ExitReason } from '../sandbox/traps.js';
import { Gate } from '../sandbox/gate.js';
import type { AdoptMessage, WorkerInput, WorkerMessage } from './protocol.js';
import { STAT_LOG, STAT_MEMORY } from '../sandbox/shared.js';
import { parseConnectRule, ruleAllows } from '../sandbox/policy.js';
import { threadCpuClocks } from '../ffi/thread-cpu.js';
import { LOG_SHARED_SLOTS, LogLimiter } from '../sandbox/log-limiter.js';
import type { GuestHost } from '../sandbox/guest-host.js';
import type { HandedOver, HandoverLink, LogLevel, LogOrigin } from '../sandbox/instance-host.js';
import { RecordingHost } from '../trace/recorder.js';
import { MetricsStore } from '../sandbox/metrics.js';

const input = workerData as WorkerInput;
const port = parentPort!;
const post = (m: WorkerMessage) => port.postMessage(m);

const connectRules = input.limits.connect.map((t) => parseConnectRule(t));
const table = new HandleTable(input.registry, crypto.getRandomValues(new Uint32Array(1))[0]!);
const backend = (await loadBackend(input.backend)).open({
  sendBufferBytes: input.limits.maxSendQueueBytes,
  creating: table.creatingCell(),
});
backend.ownDescriptors.forEach((fd, i) => table.recordOwn(i, fd));
const stats = new Float64Array(input.stats);
const control = new Int32Array(input.control);
// Recording (--record) only: the host's own lines go into the trace too, in their place.
let recorder: RecordingHost | null = null;
const postLog = (level: LogLevel, origin: LogOrigin, message: string) => post({ type: 'log', level, origin, message });
const log =
  input.record === undefined
    ? postLog
    : (level: LogLevel, origin: LogOrigin, message: string) => {
        if (origin === 'host') recorder?.hostLine(level, message);
        postLog(level, origin, message);
      };
// In this thread, so that a suppressed line never costs a message to the supervisor.
const logLimit = new LogLimiter(stats.subarray(STAT_LOG, STAT_LOG + LOG_SHARED_SLOTS), input.logBucket, (message) =>
  log('warn', 'host', message),
);
const gate = new Gate(control, stats);
// Live handover: the supervisor's messages are read inside poll.wait (this thread never returns to its event loop while the guest runs).
const handover: HandoverLink | undefined = input.handover && {
  outgoing: new Int32Array(input.handover.outgoing),
  incoming: new Int32Array(input.handover.incoming),
  gave: (cell, listen, state, peer) => post({ type: 'gave', cell, listen, state, peer }),
  batchEnd: () => post({ type: 'gave-end' }),
  adopting: (listen) => post({ type: 'adopting', listen }),
  ended: (from, ok) => post({ type: 'handover-end', from, ok }),
  receive(): HandedOver[] {
    const out: HandedOver[] = [];
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
      const a = m.message as AdoptMessage;
      if (a.type === 'adopt') out.push(...a.batch);
    }
    return out;
  },
};
// Plugin-defined metrics: values in shared memory, definitions posted (rare).
const metrics = new MetricsStore(input.limits.metricSeries, new Float64Array(input.metrics), {
  defined: (def) => post({ type: 'metric', def }),
  seriesAdded: (series) => post({ type: 'metric-series', series }),
  capReached: (cap) => host.metricCapReached(cap),
});
const mem = new GuestMemory((bytes) => (stats[STAT_MEMORY] = bytes));
const host = new InstanceHost({
  table,
  backend,
  limits: {
    listen: input.listen.map(SocketAddress.fromData),
    connectAllowed: (addr) => connectRules.some((r) => ruleAllows(r, addr)),
    sharedListen: input.sharedListen,
    ...input.limits,
  },
  stats,
  control,
  gate,
  logLimit,
  log,
  listening: (addr, fd) => post({ type: 'listening', address: addr.toData(), fd }),
  inherited: input.inherited ? new Float64Array(input.inherited) : undefined,
  handover,
  metrics,
});

// What the glue calls: the host itself, or (recording) the host behind the recorder.
let guestHost: GuestHost = host;
if (input.record !== undefined) {
  const r = input.record;
  const opened = RecordingHost.open(
    host,
    mem,
    {
      file: r.file,
      maxBytes: r.maxBytes,
      tail: r.tail,
      header: {
        plugin: { path: r.pluginPath, name: input.plugin, sha256: r.sha256 },
        config: input.config,
        listen: host.limits.listen.map(String),
        instance: input.instance,
        incarnation: r.incarnation,
        limits: {
          maxMemoryMiB: input.limits.maxMemoryMiB,
          maxConnections: input.limits.maxConnections,
          maxEventsPerWait: input.limits.maxEventsPerWait,
          maxRecvBytes: input.limits.maxRecvBytes,
          maxTableElements: r.maxTableElements,
          maxHeapMiB: r.maxHeapMiB,
          cpuBudgetMs: r.cpuBudgetMs,
          metricSeries: input.limits.metricSeries,
        },
        backend: input.backend,
        startedAt: new Date().toISOString(),
      },
    },
    (message) => postLog('warn', 'host', message),
  );
  if (opened !== null) {
    recorder = opened.host;
    guestHost = opened.host;
  }
}

post({ type: 'started', wakeTarget: backend.wakeTarget, cpuClock: threadCpuClocks()?.current() ?? null });

let reason: ExitReason;
let message: string | null;
try {
  // The watchdog's clock starts inside, before instantiation (start functions run there).
  const plugin = new PluginInstance(input.module, { mem, host: guestHost }, gate);
  plugin.initialize();
  message = plugin.run({ config: input.config, listen: host.limits.listen, instance: input.instance });
  reason = message === null ? 'returned' : 'failed';
} catch (e) {
  ({ reason, message } = describeEnd(e, () => memoryNote(mem, input.limits.maxMemoryMiB)));
}
// The trace's end record, and its last chunk, before anything else can end the thread.
recorder?.end(reason, message);

// Close what the guest left open, inside the kill gate: a kill from here on
// waits for this loop, so each socket is either closed here (its record
// cleared first) or, recorded, by the supervisor once the thread is gone;
// never both. When a kill already owns the thread's end (it is being
// terminated), touch nothing: the supervisor closes every record. The
// backend's own descriptors stay either way: the supervisor closes them once
// this thread is gone, so that a wake-up racing with this exit can never
// write to a reused descriptor number.
if (gate.closing()) host.closeAll();

post({ type: 'exit', reason, message });
