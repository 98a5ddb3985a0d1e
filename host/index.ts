/**
 * wasmux's programmatic API.
 *
 *   const server = await serve({ plugin: 'dist/plugins/echo.wasm', listen: ['127.0.0.1:0'] });
 *   await server.ready;             // every instance listens
 *   server.addresses[0].port;       // the port chosen
 *   await server.stop();
 */
import { resolve as resolvePath } from 'node:path';
import { WasmuxError } from './errors.js';
import { SocketAddress } from './backends/address.js';
import { loadBackend, resolveBackend } from './backends/index.js';
import { loadPlugin, type LoadedPlugin } from './loader/plugin.js';
import { buildPolicy, type PolicyInput, type PolicyLayer } from './sandbox/policy.js';
import { PluginServer } from './supervisor/plugin-server.js';
import { stderrLogger, type Logger } from './supervisor/logger.js';

export { WasmuxError, type WasmuxErrorCode } from './errors.js';
export { SocketAddress } from './backends/address.js';
export { BACKEND_NAMES, availableBackends, resolveBackend } from './backends/index.js';
export type { BackendName } from './backends/backend.js';
export { loadPlugin, compilePlugin, checkComponent, importName, type LoadedPlugin } from './loader/plugin.js';
export { readComponent, type ComponentInfo } from './loader/component.js';
export {
  PluginServer,
  RELOAD_DRAIN_DEFAULT_MS,
  type InstanceStats,
  type ReloadOptions,
  type ReloadResult,
} from './supervisor/plugin-server.js';
export {
  stderrLogger,
  jsonStderrLogger,
  jsonLine,
  escapeControl,
  type Logger,
  type LogEntry,
  type LogOrigin,
} from './supervisor/logger.js';
export { serveAdmin, parseAdminAddress, pluginReady, type AdminServer, type AdminOptions } from './supervisor/admin.js';
export {
  simulate,
  prepareSimulation,
  runSimulation,
  type MetricSample,
  type Net,
  type Scenario,
  type ScenarioStep,
  type SimClient,
  type SimListener,
  type SimOptions,
  type SimPlugin,
  type SimResult,
} from './sim/simulate.js';
export { FAULT_KINDS, ALL_FAULTS, parseFaults, formatFaults, type FaultKind, type FaultPlan, type AppliedFault } from './sim/faults.js';
export {
  POLICY_DEFAULTS,
  POLICY_KNOBS,
  POLICY_LISTS,
  POLICY_SWITCHES,
  KNOB_NAMES,
  SWITCH_NAMES,
  buildPolicy,
  describePolicy,
  type Knob,
  type KnobName,
  type SwitchName,
  type Policy,
  type PolicyInput,
  type PolicyLayer,
} from './sandbox/policy.js';

export interface ServeOptions {
  /** A path to a plugin component, or one already loaded. */
  plugin: string | LoadedPlugin;
  /** Addresses to serve ("127.0.0.1:7000", "[::1]:0"); the plugin may listen on exactly these. */
  listen?: readonly string[];
  /**
   * The plugin's policy (its knobs and their defaults: POLICY_KNOBS);
   * `listen` above is added to its listen list. By default a plugin may make
   * no outbound connection.
   */
  policy?: PolicyInput | PolicyLayer[];
  /** Instances (worker threads) of the plugin. Default 1. */
  workers?: number;
  /** I/O backend: "auto" (default) or a name from BACKEND_NAMES. */
  backend?: string;
  /** Passed to the plugin's run() as ctx.config. Default "". */
  config?: string;
  /** Where log lines go. Default: stderr, info and above. */
  logger?: Logger;
  /** Cap on bytes returned by one tcp.recv. Default 1 MiB. */
  maxRecvBytes?: number;
  /** How long stop() lets an instance end by itself. Default 2000 ms. */
  stopTimeoutMs?: number;
  /**
   * Record every instance into a trace for `wasmux replay` (docs/trace-format.md):
   * `file` (one instance) or `file.<instance>`; each trace at most `maxBytes`
   * (default 256 MiB).
   */
  record?: { file: string; maxBytes?: number };
}

export const DEFAULTS = {
  workers: 1,
  backend: 'auto',
  maxRecvBytes: 1 << 20,
  stopTimeoutMs: 2000,
  recordMaxBytes: 256 * 1024 * 1024,
} as const;

export function parseAddress(text: string): SocketAddress {
  const a = SocketAddress.parse(text);
  if (!a)
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `"${text}" is not an address (expected host:port, e.g. 127.0.0.1:7000 or [::1]:7000)`);
  return a;
}

function positive(name: string, v: number | undefined, dflt: number, max: number): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${name} must be an integer from 1 to ${max} (got ${v})`);
  }
  return n;
}

/**
 * Loads (if needed) and starts a plugin. Await `server.ready` before
 * connecting. `server.reload(options?)` (PluginServer.reload) replaces the
 * running version by a new one without refusing a connection: by default
 * the same file read again; a new file, config or policy through
 * ReloadOptions.
 */
export async function serve(opts: ServeOptions): Promise<PluginServer> {
  const listen = (opts.listen ?? []).map(parseAddress);
  const policy = buildPolicy(Array.isArray(opts.policy) ? opts.policy : [{ where: 'policy', input: opts.policy ?? {} }]);
  for (const a of listen) if (!policy.listen.some((p) => p.equals(a))) policy.listen.push(a);
  const workers = positive('workers', opts.workers, DEFAULTS.workers, 256);
  const backend = await loadBackend(resolveBackend(opts.backend ?? DEFAULTS.backend));
  const plugin = typeof opts.plugin === 'string' ? await loadPlugin(opts.plugin) : opts.plugin;
  return PluginServer.start(plugin, {
    policy,
    workers,
    backend,
    config: opts.config ?? '',
    logger: opts.logger ?? stderrLogger(),
    maxRecvBytes: positive('maxRecvBytes', opts.maxRecvBytes, DEFAULTS.maxRecvBytes, 1 << 26),
    stopTimeoutMs: positive('stopTimeoutMs', opts.stopTimeoutMs, DEFAULTS.stopTimeoutMs, 600_000),
    record:
      opts.record === undefined
        ? undefined
        : {
            file: resolvePath(opts.record.file),
            maxBytes: positive('record.maxBytes', opts.record.maxBytes, DEFAULTS.recordMaxBytes, 2 ** 48),
            pluginPath: typeof opts.plugin === 'string' ? resolvePath(opts.plugin) : null,
          },
    pluginPath: typeof opts.plugin === 'string' ? resolvePath(opts.plugin) : null,
  });
}
