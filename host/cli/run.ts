/** `wasmux run`: serve one or more plugins until SIGINT or SIGTERM. */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { serve, DEFAULTS, BACKEND_NAMES, POLICY_DEFAULTS, resolveBackend, stderrLogger, type PluginServer,
  type PolicyInput, type Logger } from '../index.js';
import { writeStderrLine } from '../supervisor/logger.js';
import { WasmuxError } from '../errors.js';
import { parsed, integer } from './args.js';

const DRAIN_DEFAULT_MS = 5000;

export function runHelp(): string {
  let auto: string;
  try {
    auto = resolveBackend('auto');
  } catch {
    auto = 'none available';
  }
  const d = POLICY_DEFAULTS;
  return `Usage: wasmux run <plugin.wasm> [plugin options] [<plugin.wasm> [plugin options]]... [host options]
       wasmux run --manifest host.json [host options]

Serves plugin components: starts each plugin's instances, each in its own
worker thread with its own event loop, restarts an instance that dies, and
drains and stops them all on SIGINT/SIGTERM. Options after a plugin file
apply to that plugin.

Plugin options:
  --listen <host:port>      an address to serve; repeat for several; port 0
                            picks a free port (printed at start). The plugin
                            may listen on exactly these addresses.
  --workers <n>             instances sharing the addresses (SO_REUSEPORT) [default: ${DEFAULTS.workers}]
  --config <string>         passed to the plugin as ctx.config           [default: ""]
  --policy <file.json>      the plugin's policy (keys below, in camelCase); flags override it
  --allow-connect <rule>    allow outbound connections: host[/prefix]:port[-port] or host:*,
                            IPv6 in brackets; repeat for several          [default: none allowed]
  --max-connections <n>     open connections per instance; more are closed [default: ${d.maxConnections}]
  --max-memory <MiB>        linear memory per instance (enforced in the module) [default: ${d.maxMemoryMiB}]
  --max-table-elements <n>  elements of all tables per instance (enforced in the
                            module)                                       [default: ${d.maxTableElements}]
  --max-heap <MiB>          V8 heap of the instance's thread (tables live there) [default: ${d.maxHeapMiB}]
  --cpu-budget <ms>         guest time allowed between two waits; over it the
                            instance is killed and restarted              [default: ${d.cpuBudgetMs}]
  --max-send-queue <bytes>  kernel send buffer per connection             [default: ${d.maxSendQueueBytes}]
  --idle-timeout <ms>       shut down connections idle this long; 0 = never [default: ${d.idleTimeoutMs}]
  --max-events <n>          events returned by one poll.wait              [default: ${d.maxEventsPerWait}]

Host options:
  --backend <name>          I/O backend: auto, ${BACKEND_NAMES.join(', ')}
                                                              [default: auto = ${auto} here]
  --drain-timeout <ms>      on SIGTERM/SIGINT, time open connections get to
                            finish after the listeners close              [default: ${DRAIN_DEFAULT_MS}]
  --manifest <host.json>    plugins to serve: {"plugins": [{"plugin": "x.wasm",
                            "listen": [...], "workers": 1, "config": "", "policy": {...}}]}
  --log-level <level>       trace, debug, info, warn, error               [default: info]
  -h, --help                show this help

Signals: SIGTERM/SIGINT drain then stop (a second one stops at once);
SIGUSR2 prints every instance's counters.

Examples:
  wasmux run dist/plugins/echo.wasm --listen 127.0.0.1:7000
  wasmux run dist/plugins/echo.wasm --listen 127.0.0.1:7000 --workers 2 \\
             other.wasm --listen 127.0.0.1:7001 --cpu-budget 100 --max-memory 16
`;
}

interface PluginSpec {
  plugin: string;
  listen: string[];
  workers?: number;
  config?: string;
  policy: PolicyInput;
  policyFile?: string;
}

const PLUGIN_OPTIONS = new Set(['listen', 'workers', 'config', 'policy', 'allow-connect', 'max-connections',
  'max-memory', 'max-table-elements', 'max-heap', 'cpu-budget', 'max-send-queue', 'idle-timeout', 'max-events']);

/** Splits the command line into host options and one spec per plugin file. */
function parseCommandLine(argv: string[]) {
  const { tokens } = parsed(() => parseArgs({
    args: argv,
    allowPositionals: true,
    tokens: true,
    options: {
      listen: { type: 'string', multiple: true },
      workers: { type: 'string' },
      config: { type: 'string' },
      policy: { type: 'string' },
      'allow-connect': { type: 'string', multiple: true },
      'max-connections': { type: 'string' },
      'max-memory': { type: 'string' },
      'max-table-elements': { type: 'string' },
      'max-heap': { type: 'string' },
      'cpu-budget': { type: 'string' },
      'max-send-queue': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'max-events': { type: 'string' },
      backend: { type: 'string' },
      'drain-timeout': { type: 'string' },
      manifest: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
  const host: Record<string, string | boolean> = {};
  const specs: PluginSpec[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') {
      specs.push({ plugin: t.value, listen: [], policy: {} });
      continue;
    }
    if (t.kind !== 'option') continue;
    const value = t.value ?? true;
    if (!PLUGIN_OPTIONS.has(t.name)) {
      host[t.name] = value;
      continue;
    }
    const spec = specs[specs.length - 1];
    if (!spec) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${t.rawName} applies to a plugin: put it after the plugin file`);
    const v = String(value);
    const n = (flag: string) => integer(flag, v)!;
    switch (t.name) {
      case 'listen': spec.listen.push(v); break;
      case 'workers': spec.workers = n('--workers'); break;
      case 'config': spec.config = v; break;
      case 'policy': spec.policyFile = v; break;
      case 'allow-connect': (spec.policy.connect ??= []).push(v); break;
      case 'max-connections': spec.policy.maxConnections = n('--max-connections'); break;
      case 'max-memory': spec.policy.maxMemoryMiB = n('--max-memory'); break;
      case 'max-table-elements': spec.policy.maxTableElements = n('--max-table-elements'); break;
      case 'max-heap': spec.policy.maxHeapMiB = n('--max-heap'); break;
      case 'cpu-budget': spec.policy.cpuBudgetMs = n('--cpu-budget'); break;
      case 'max-send-queue': spec.policy.maxSendQueueBytes = n('--max-send-queue'); break;
      case 'idle-timeout': spec.policy.idleTimeoutMs = n('--idle-timeout'); break;
      case 'max-events': spec.policy.maxEventsPerWait = n('--max-events'); break;
    }
  }
  return { host, specs };
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_IO', `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new WasmuxError(what === 'policy' ? 'WASMUX_ERR_BAD_POLICY' : 'WASMUX_ERR_BAD_ARGUMENT', `${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}

async function manifestSpecs(path: string): Promise<PluginSpec[]> {
  const m = (await readJson(path, 'manifest')) as { plugins?: unknown };
  if (!m || !Array.isArray(m.plugins) || m.plugins.length === 0) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `manifest ${path} must be {"plugins": [ ... ]} with at least one plugin`);
  }
  return m.plugins.map((p: Record<string, unknown>, i: number) => {
    const where = `manifest ${path}, plugins[${i}]`;
    if (typeof p?.plugin !== 'string') throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${where}: "plugin" must be a file path`);
    const known = new Set(['plugin', 'listen', 'workers', 'config', 'policy']);
    for (const k of Object.keys(p)) if (!known.has(k)) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${where}: unknown key "${k}"`);
    return {
      plugin: p.plugin,
      listen: Array.isArray(p.listen) ? p.listen.map(String) : [],
      workers: p.workers as number | undefined,
      config: p.config as string | undefined,
      policy: typeof p.policy === 'object' && p.policy !== null ? (p.policy as PolicyInput) : {},
      policyFile: typeof p.policy === 'string' ? p.policy : undefined,
    };
  });
}

function printStats(servers: PluginServer[]): void {
  for (const s of servers) {
    for (const st of s.stats()) {
      const ends = Object.entries(st.ends).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
      writeStderrLine(
        `${s.name}[${st.instance}] ${st.running ? 'running' : 'ended'}: accepted ${st.accepted}, open ${st.open}, ` +
        `bytes in ${st.bytesIn}, out ${st.bytesOut}, events ${st.events}, refused ${st.refused}, ` +
        `idle-closed ${st.idleClosed}, memory ${st.memoryBytes}, restarts ${st.restarts}, ends: ${ends}`);
    }
  }
}

export async function runCommand(argv: string[]): Promise<number> {
  const { host, specs: cliSpecs } = parseCommandLine(argv);
  if (host.help) {
    process.stdout.write(runHelp());
    return 0;
  }
  const specs = typeof host.manifest === 'string' ? [...(await manifestSpecs(host.manifest)), ...cliSpecs] : cliSpecs;
  if (specs.length === 0) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', 'run needs a plugin file (see wasmux run --help)');
  const level = typeof host['log-level'] === 'string' ? host['log-level'] : 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level)) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--log-level must be trace, debug, info, warn or error (got "${level}")`);
  }
  const drainMs = integer('--drain-timeout', typeof host['drain-timeout'] === 'string' ? host['drain-timeout'] : undefined) ?? DRAIN_DEFAULT_MS;
  const backend = typeof host.backend === 'string' ? host.backend : undefined;
  const logger: Logger = stderrLogger(level as 'info');

  const servers: PluginServer[] = [];
  const stopAll = () => Promise.all(servers.map((s) => s.stop()));
  try {
    for (const spec of specs) {
      // The file first, then the flags: a flag overrides the file's value, connect rules add up.
      const policy = [{ where: 'command line', input: spec.policy }];
      if (spec.policyFile) policy.unshift({ where: `policy ${spec.policyFile}`, input: (await readJson(spec.policyFile, 'policy')) as PolicyInput });
      servers.push(await serve({ plugin: spec.plugin, listen: spec.listen, workers: spec.workers, config: spec.config, policy, backend, logger }));
    }
  } catch (e) {
    await stopAll();
    throw e;
  }

  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      writeStderrLine(`wasmux: ${sig} again, stopping at once`);
      void stopAll();
      return;
    }
    signalled = true;
    writeStderrLine(`wasmux: ${sig}, draining (up to ${drainMs} ms)`);
    void Promise.all(servers.map((s) => s.drain(drainMs)));
  };
  const onUsr2 = () => printStats(servers);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGUSR2', onUsr2);

  let failed = false;
  await Promise.all(servers.map(async (s) => {
    try {
      await s.ready;
      const where = s.addresses.map(String).join(', ') || '(no addresses)';
      const n = s.stats().length;
      process.stdout.write(`wasmux: ${s.name} listening on ${where} (backend ${s.backend}, ${n} worker${n === 1 ? '' : 's'})\n`);
    } catch (e) {
      failed = true;
      // The message may quote the guest (its run() error): one line, escaped, like every log line.
      writeStderrLine(`wasmux: error ${(e as WasmuxError).code ?? 'WASMUX_ERR_PLUGIN_FAILED'}: ${(e as Error).message}`);
    }
  }));

  // Every plugin ends: drained and stopped by a signal, or by itself.
  await Promise.all(servers.map((s) => s.finished()));
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGUSR2', onUsr2);
  printStats(servers);
  if (servers.some((s) => s.failed)) failed = true;
  return failed ? 1 : 0;
}
