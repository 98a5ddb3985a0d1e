/**
 * The admin endpoint (`wasmux run --admin host:port`, `serveAdmin()`): an
 * HTTP server on the main thread, off the hot path. Every value is read at
 * request time from what the PluginServers already count in shared memory
 * (stats(), reloadStats()): no message per event.
 *
 *   GET /metrics   Prometheus text exposition (prom-client)
 *   GET /healthz   200: the process is alive
 *   GET /readyz    200 when every plugin has all its instances running; 503 otherwise (and once stopping)
 *   GET /plugins   JSON: each plugin, its version, sha256, instances, policy
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
// Loaded by serveAdmin, not with this module: importing wasmux (the CLI's
// other commands, simulate(), serve() without --admin) does not pay for it.
import type { Counter, Gauge, Registry } from 'prom-client';

type PromClient = typeof import('prom-client');
import { WasmuxError } from '../errors.js';
import { describePolicy } from '../sandbox/policy.js';
import { SERIES_SLOTS } from '../sandbox/metrics.js';
import { TURN_BOUNDS } from '../sandbox/shared.js';
import type { PluginServer } from './plugin-server.js';

/** `host:port` (IPv6 in brackets), port 0..65535; throws WASMUX_ERR_BAD_ARGUMENT. */
export function parseAdminAddress(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--admin must be host:port (IPv6 in brackets), port 0..65535 (got "${value}")`);
  }
  const host = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { host, port };
}

/** Whether a plugin serves: ready, not draining or stopped, not given up on, every instance running. */
export function pluginReady(s: PluginServer): boolean {
  return s.state === 'serving' && s.stats().every((st) => st.running);
}

export interface AdminServer {
  /** Where it listens (the concrete port when asked for port 0). */
  readonly host: string;
  readonly port: number;
  /** `http://host:port` (an IPv6 host in brackets). */
  readonly url: string;
  /** Closes the listener and every open admin connection. Idempotent. */
  close(): Promise<void>;
}

export interface AdminOptions {
  host: string;
  port: number;
  /** The plugins served; read at each request (the array may still be filling during start). */
  servers: () => readonly PluginServer[];
  /** How many plugins there will be: /readyz says 503 until that many exist and are ready. */
  expected: number;
  /** True once the process is stopping (`wasmux run --shutdown-delay`): /readyz says 503 "stopping" while it still serves. */
  stopping?: () => boolean;
}

type Labels = 'plugin' | 'instance';

/** One sample as prom-client's registry formats it (its metricName: a histogram's _bucket, _sum, _count). */
interface Sample {
  labels: Record<string, string>;
  value: number;
  metricName?: string;
}

/** A metric family built at scrape time, in the shape prom-client's Registry formats (get()). */
interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Sample[];
}

/** A family whose samples `values()` gives at each scrape, registered as prom-client registers its own. */
function familyMetric(name: string, help: string, type: Family['type'], values: () => Sample[]) {
  return { name, help, type, get: async (): Promise<Family> => ({ name, help, type, values: values() }), reset() {} };
}

/** A histogram's samples from counts per bound (then +Inf, not cumulative) and a sum. */
function histogramSamples(name: string, labels: Record<string, string>, bounds: readonly number[], counts: ArrayLike<number>, sum: number) {
  const out: Sample[] = [];
  let total = 0;
  for (let i = 0; i <= bounds.length; i++) {
    total += counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: i < bounds.length ? String(bounds[i]) : '+Inf' }, value: total });
  }
  out.push({ metricName: `${name}_sum`, labels, value: sum });
  out.push({ metricName: `${name}_count`, labels, value: total });
  return out;
}

/** A plugin's name as a metric name prefix: characters Prometheus does not take become `_`. */
export function metricPrefix(plugin: string): string {
  const p = plugin.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(p) ? `_${p}` : p;
}

/**
 * The plugin-defined metrics (wit/metrics.wit) as families, read from the
 * instances' shared values: `<plugin>_<name>`, with the plugin's labels and
 * `plugin`, `instance`. A name in the host's `wasmux_` namespace is left
 * out, and so is a series whose metric disagrees (kind, label names) with
 * the first definition of its name seen in this scrape (another instance,
 * another plugin, another version), and a family named like a histogram's
 * own samples (`<histogram>_bucket`, `_sum`, `_count`).
 */
function pluginFamilies(servers: readonly PluginServer[]): Map<string, Family & { labelKey: string }> {
  const families = new Map<string, Family & { labelKey: string }>();
  for (const s of servers) {
    const prefix = metricPrefix(s.name);
    for (const im of s.pluginMetrics()) {
      for (const series of im.series) {
        const def = im.metrics.get(series.metric);
        if (!def) continue;
        const name = `${prefix}_${def.name}`;
        if (name.startsWith('wasmux_')) continue;
        const labelKey = def.labels.join(',');
        let fam = families.get(name);
        if (!fam) families.set(name, (fam = { name, help: def.help, type: def.kind, values: [], labelKey }));
        else if (fam.type !== def.kind || fam.labelKey !== labelKey) continue;
        const labels: Record<string, string> = { plugin: s.name, instance: String(im.instance) };
        def.labels.forEach((l, i) => (labels[l] = series.values[i]!));
        const at = (series.id - 1) * SERIES_SLOTS;
        const v = im.values;
        if (def.kind === 'histogram') {
          fam.values.push(
            ...histogramSamples(name, labels, def.buckets, v.subarray(at, at + def.buckets.length + 1), v[at + SERIES_SLOTS - 1]!),
          );
        } else {
          fam.values.push({ labels, value: v[at]! });
        }
      }
    }
  }
  // A histogram's samples are <name>_bucket, _sum and _count: a family of one of those names would clash with them.
  for (const f of [...families.values()]) {
    if (f.type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) families.delete(f.name + suffix);
  }
  return families;
}

/** The metrics, each filled at scrape time from the servers' counters. */
function registry(prom: PromClient, servers: () => readonly PluginServer[]): Registry {
  const { Counter, Gauge, Registry } = prom;
  const reg = new Registry();
  const perInstance = (
    name: string,
    help: string,
    kind: 'counter' | 'gauge',
    value: (st: ReturnType<PluginServer['stats']>[number]) => number,
  ) => {
    const collect = function (this: Counter<Labels> | Gauge<Labels>) {
      this.reset();
      for (const s of servers()) {
        for (const st of s.stats()) {
          const labels = { plugin: s.name, instance: String(st.instance) };
          if (this instanceof Counter) this.inc(labels, value(st));
          else (this as Gauge<Labels>).set(labels, value(st));
        }
      }
    };
    const config = { name, help, labelNames: ['plugin', 'instance'] as const, registers: [reg], collect };
    if (kind === 'counter') new Counter<Labels>(config);
    else new Gauge<Labels>(config);
  };
  perInstance('wasmux_connections_accepted_total', 'Connections accepted by the instance', 'counter', (st) => st.accepted);
  perInstance('wasmux_connections_open', 'Connections open now', 'gauge', (st) => st.open);
  perInstance('wasmux_received_bytes_total', 'Bytes read from connections', 'counter', (st) => st.bytesIn);
  perInstance('wasmux_sent_bytes_total', 'Bytes written to connections', 'counter', (st) => st.bytesOut);
  perInstance('wasmux_events_total', 'I/O events delivered to the guest', 'counter', (st) => st.events);
  perInstance('wasmux_waits_total', 'poll.wait calls of the guest', 'counter', (st) => st.waits);
  perInstance('wasmux_connections_refused_total', 'Connections closed at accept (maxConnections reached)', 'counter', (st) => st.refused);
  perInstance('wasmux_connections_idle_closed_total', 'Connections shut down by the idle timeout', 'counter', (st) => st.idleClosed);
  perInstance('wasmux_memory_bytes', "The instance's linear memory now", 'gauge', (st) => st.memoryBytes);
  perInstance('wasmux_restarts_total', 'Restarts of the instance', 'counter', (st) => st.restarts);
  perInstance('wasmux_watchdog_kills_total', 'Incarnations killed by the CPU watchdog', 'counter', (st) => st.ends.killed ?? 0);
  perInstance('wasmux_instance_up', '1 while the instance runs, else 0', 'gauge', (st) => (st.running ? 1 : 0));
  new Counter<Labels>({
    name: 'wasmux_cpu_seconds_total',
    help: "CPU time of the instance's current thread (guest and its host calls); restarts from 0 with the instance; Linux and Windows",
    labelNames: ['plugin', 'instance'],
    registers: [reg],
    collect() {
      this.reset();
      for (const s of servers())
        for (const st of s.stats()) if (st.cpuMs !== null) this.inc({ plugin: s.name, instance: String(st.instance) }, st.cpuMs / 1000);
    },
  });
  // A counter per instance and one more label, from a count per label value.
  const perInstanceBy = (
    name: string,
    help: string,
    label: string,
    counts: (st: ReturnType<PluginServer['stats']>[number]) => Record<string, number>,
  ) =>
    new Counter<string>({
      name,
      help,
      labelNames: ['plugin', 'instance', label],
      registers: [reg],
      collect() {
        this.reset();
        for (const s of servers())
          for (const st of s.stats())
            for (const [value, n] of Object.entries(counts(st)))
              this.inc({ plugin: s.name, instance: String(st.instance), [label]: value }, n);
      },
    });
  perInstanceBy(
    'wasmux_instance_ends_total',
    'Incarnations ended, by cause (trapped, killed, failed, crashed, returned, stopped...)',
    'cause',
    (st) => st.ends,
  );
  perInstanceBy(
    'wasmux_proxy_headers_rejected_total',
    'Connections closed before the guest saw them: PROXY protocol header malformed (or missing), truncated, timeout, oversized, unsupported',
    'reason',
    (st) => st.proxyRejected,
  );
  const perPlugin = (name: string, help: string, kind: 'counter' | 'gauge', value: (s: PluginServer) => number) => {
    const collect = function (this: Counter<'plugin'> | Gauge<'plugin'>) {
      this.reset();
      for (const s of servers()) {
        if (this instanceof Counter) this.inc({ plugin: s.name }, value(s));
        else (this as Gauge<'plugin'>).set({ plugin: s.name }, value(s));
      }
    };
    const config = { name, help, labelNames: ['plugin'] as const, registers: [reg], collect };
    if (kind === 'counter') new Counter<'plugin'>(config);
    else new Gauge<'plugin'>(config);
  };
  reg.registerMetric(
    familyMetric(
      'wasmux_loop_turn_seconds',
      'Time the guest ran between two poll.wait calls (from one wait returning to the next wait call)',
      'histogram',
      () =>
        servers().flatMap((s) =>
          s
            .stats()
            .flatMap((st) =>
              histogramSamples(
                'wasmux_loop_turn_seconds',
                { plugin: s.name, instance: String(st.instance) },
                TURN_BOUNDS,
                st.turns.buckets,
                st.turns.sum,
              ),
            ),
        ),
    ) as never,
  );
  perPlugin('wasmux_reloads_total', 'Reloads that put a new version in place', 'counter', (s) => s.reloadStats().done);
  perPlugin(
    'wasmux_reloads_failed_total',
    'Reloads that failed or were refused (the old version served on)',
    'counter',
    (s) => s.reloadStats().failed,
  );
  perPlugin(
    'wasmux_handovers_total',
    'Connections adopted by a newer version (live handover)',
    'counter',
    (s) => s.reloadStats().handoversDone,
  );
  perPlugin(
    'wasmux_handovers_failed_total',
    'Connections closed because a handover failed',
    'counter',
    (s) => s.reloadStats().handoversFailed,
  );
  perPlugin('wasmux_plugin_generation', 'The version serving: 0 at start, +1 per reload', 'gauge', (s) => s.generation);
  perPlugin('wasmux_plugin_ready', '1 when every instance of the plugin is ready, else 0', 'gauge', (s) => (pluginReady(s) ? 1 : 0));
  return reg;
}

function pluginsJson(servers: readonly PluginServer[]) {
  return {
    plugins: servers.map((s) => ({
      name: s.name,
      state: s.state,
      ready: pluginReady(s),
      generation: s.generation,
      sha256: s.sha256,
      backend: s.backend,
      addresses: s.addresses.map(String),
      instances: s.stats(),
      reloads: s.reloadStats(),
      policy: describePolicy(s.policy),
    })),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string, head: boolean): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(head ? undefined : body);
}

/** Starts the admin endpoint; a listen failure is WASMUX_ERR_LISTEN. */
export async function serveAdmin(opts: AdminOptions): Promise<AdminServer> {
  const prom = await import('prom-client');
  const reg = registry(prom, opts.servers);
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const known = ['/metrics', '/healthz', '/readyz', '/plugins'];
    if (!known.includes(path!)) return send(res, 404, 'text/plain; charset=utf-8', 'not found\n', req.method === 'HEAD');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', false);
    }
    const head = req.method === 'HEAD';
    const servers = opts.servers();
    if (path === '/healthz') return send(res, 200, 'text/plain; charset=utf-8', 'ok\n', head);
    if (path === '/readyz') {
      if (opts.stopping?.()) return send(res, 503, 'text/plain; charset=utf-8', 'stopping\n', head);
      const ready = servers.length === opts.expected && servers.every(pluginReady);
      return send(res, ready ? 200 : 503, 'text/plain; charset=utf-8', ready ? 'ready\n' : 'not ready\n', head);
    }
    if (path === '/plugins') return send(res, 200, 'application/json', `${JSON.stringify(pluginsJson(servers), null, 2)}\n`, head);
    // The plugins' own families come and go with their definitions: a registry of this scrape's.
    const families = pluginFamilies(servers);
    let text = await reg.metrics();
    if (families.size > 0) {
      const own = new prom.Registry();
      for (const f of families.values()) own.registerMetric(familyMetric(f.name, f.help, f.type, () => f.values) as never);
      text += `\n${await own.metrics()}`;
    }
    return send(res, 200, reg.contentType, text, head);
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `${e.message}\n`, false);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new WasmuxError('WASMUX_ERR_LISTEN', `--admin ${opts.host}:${opts.port}: cannot listen: ${e.code ?? e.message}`, { cause: e }),
      ),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    host: addr.address,
    port: addr.port,
    url: `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
