/** `wasmux run`: serve one or more plugins until SIGINT or SIGTERM; reload them on SIGHUP. */
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import {
  serve,
  DEFAULTS,
  BACKEND_NAMES,
  KNOB_NAMES,
  POLICY_KNOBS,
  POLICY_LISTS,
  POLICY_SWITCHES,
  SWITCH_NAMES,
  resolveBackend,
  stderrLogger,
  type KnobName,
  type SwitchName,
  type PluginServer,
  type PolicyInput,
  type PolicyLayer,
  type Logger,
} from '../index.js';
import { jsonLine, jsonStderrLogger, writeStderrLine } from '../supervisor/logger.js';
import type { LogLevel } from '../sandbox/instance-host.js';
import { WasmuxError } from '../errors.js';
import { parsed, integer } from './args.js';
import { parseAdminAddress, serveAdmin, type AdminServer } from '../supervisor/admin.js';

export const DRAIN_DEFAULT_MS = 5000;

/** --log-format json: the lines run writes itself are JSON objects too (set by runCommand). */
let jsonFormat = false;

/** A line of run's own: one escaped text line, or a JSON object (origin host, no plugin) with --log-format json. */
function say(
  text: string,
  level: LogLevel = 'info',
  stream: 'stdout' | 'stderr' = 'stderr',
  about?: { source: string; instance?: number; fields: Record<string, unknown> },
): void {
  if (jsonFormat) process[stream].write(`${jsonLine({ level, origin: 'host', message: text, ...about })}\n`);
  else if (stream === 'stderr') writeStderrLine(text);
  else process.stdout.write(`${text}\n`);
}

const HELP_WIDTH = 80;
const HELP_COLUMN = 28;

/** One option of --help: its name, then its text wrapped at HELP_COLUMN, the default last. */
export function optionHelp(name: string, text: string, dflt?: string): string {
  const words = dflt === undefined ? text.split(' ') : [...text.split(' '), `[default: ${dflt}]`];
  const lines: string[] = [];
  let line = `  ${name}`.padEnd(HELP_COLUMN - 1);
  if (line.length >= HELP_COLUMN) {
    lines.push(line);
    line = ''.padEnd(HELP_COLUMN - 1);
  }
  let empty = true;
  for (const w of words) {
    if (!empty && line.length + 1 + w.length > HELP_WIDTH) {
      lines.push(line);
      line = ''.padEnd(HELP_COLUMN - 1);
      empty = true;
    }
    line += ` ${w}`;
    empty = false;
  }
  lines.push(line);
  return lines.join('\n');
}

/** The policy's flags, from POLICY_KNOBS. */
/** The policy's on/off flags, as --help lists them. */
export function switchHelp(): string {
  return SWITCH_NAMES.map((k) => optionHelp(`--${POLICY_SWITCHES[k].flag}`, POLICY_SWITCHES[k].help, 'off')).join('\n');
}

export function knobHelp(): string {
  return KNOB_NAMES.map((k) => {
    const knob = POLICY_KNOBS[k];
    return optionHelp(`--${knob.flag} ${knob.arg}`, `${knob.help} (${knob.min}..${knob.max})`, String(knob.default));
  }).join('\n');
}

export function runHelp(): string {
  let auto: string;
  try {
    auto = resolveBackend('auto');
  } catch {
    auto = 'none available';
  }
  return `Usage: wasmux run <plugin.wasm> [plugin options] [<plugin.wasm> [plugin options]]... [host options]
       wasmux run --manifest host.json [host options]

Serves plugin components: starts each plugin's instances, each in its own
worker thread with its own event loop, restarts an instance that dies, and
drains and stops them all on SIGINT/SIGTERM. Options after a plugin file
apply to that plugin.

Plugin options:
${optionHelp(`--${POLICY_LISTS.listen.flag} ${POLICY_LISTS.listen.arg}`, 'an address to serve; repeat for several; port 0 picks a free port (printed at start). The plugin may listen on exactly these addresses.')}
${optionHelp('--workers <n>', 'instances sharing the addresses (SO_REUSEPORT)', String(DEFAULTS.workers))}
${optionHelp('--config <string>', 'passed to the plugin as ctx.config', '""')}
${optionHelp('--policy <file.json>', "the plugin's policy (the keys are the flags below in camelCase: maxConnections...); flags override it")}
${optionHelp(`--${POLICY_LISTS.connect.flag} ${POLICY_LISTS.connect.arg}`, 'allow outbound connections: host[/prefix]:port[-port] or host:*, IPv6 in brackets; repeat for several', 'none allowed')}
${switchHelp()}
${knobHelp()}

Host options:
${optionHelp('--backend <name>', `I/O backend: auto, ${BACKEND_NAMES.join(', ')}`, `auto = ${auto} here`)}
${optionHelp('--drain-timeout <ms>', 'on SIGTERM/SIGINT, and for the old version on a reload (SIGHUP), time open connections get to finish after the listeners close', String(DRAIN_DEFAULT_MS))}
${optionHelp('--shutdown-delay <ms>', 'on SIGTERM/SIGINT, first keep serving and accepting this long, /readyz saying 503 "stopping", so that a load balancer stops sending before the listeners close (its check interval times the failures it needs); then drain', '0')}
${optionHelp('--manifest <host.json>', 'plugins to serve: {"plugins": [{"plugin": "x.wasm", "listen": [...], "workers": 1, "config": "", "policy": {...}}]}')}
${optionHelp('--admin <host:port>', 'serve the admin endpoint there (HTTP): /metrics (Prometheus), /healthz, /readyz, /plugins; port 0 picks a free port (printed at start)', 'none')}
${optionHelp('--log-level <level>', 'trace, debug, info, warn, error', 'info')}
${optionHelp('--log-format <format>', 'text, or json: one JSON object per line (time, level, plugin, instance, origin, message), the lines run writes itself included', 'text')}
${optionHelp('--record <file>', 'record every instance for wasmux replay: <file> for one plugin with one worker, <file>.<instance> for several workers, <file>.<plugin> for several plugins; a version after a reload adds .g<n>, a restart .r<n> (docs/trace-format.md)')}
${optionHelp('--record-max-bytes <n>', 'size bound of each trace: reached, the trace ends "truncated" and the instance goes on unrecorded', String(DEFAULTS.recordMaxBytes))}
${optionHelp('-h, --help', 'show this help')}

Signals: SIGTERM/SIGINT drain then stop (a second one stops at once);
SIGHUP reloads: reads the plugin files, the manifest and the policy files
again and replaces every plugin's instances by new ones on the same
addresses without refusing a connection (the old ones drain); a version
that fails to start is logged and the old one serves on; SIGUSR2 prints
every instance's counters and the reload counters.

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

/** The policy's flags, by flag. */
const KNOB_BY_FLAG = new Map<string, KnobName>(KNOB_NAMES.map((k) => [POLICY_KNOBS[k].flag, k]));
/** The policy's switches, by flag. */
const SWITCH_BY_FLAG = new Map<string, SwitchName>(SWITCH_NAMES.map((k) => [POLICY_SWITCHES[k].flag, k]));
const PLUGIN_OPTIONS = new Set([
  'listen',
  'workers',
  'config',
  'policy',
  POLICY_LISTS.connect.flag,
  ...KNOB_BY_FLAG.keys(),
  ...SWITCH_BY_FLAG.keys(),
]);

/** Splits the command line into host options and one spec per plugin file. */
function parseCommandLine(argv: string[]) {
  const { tokens } = parsed(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      tokens: true,
      options: {
        listen: { type: 'string', multiple: true },
        workers: { type: 'string' },
        config: { type: 'string' },
        policy: { type: 'string' },
        [POLICY_LISTS.connect.flag]: { type: 'string', multiple: true },
        ...Object.fromEntries([...KNOB_BY_FLAG.keys()].map((flag) => [flag, { type: 'string' as const }])),
        ...Object.fromEntries([...SWITCH_BY_FLAG.keys()].map((flag) => [flag, { type: 'boolean' as const }])),
        backend: { type: 'string' },
        'drain-timeout': { type: 'string' },
        'shutdown-delay': { type: 'string' },
        manifest: { type: 'string' },
        'log-level': { type: 'string' },
        admin: { type: 'string' },
        'log-format': { type: 'string' },
        record: { type: 'string' },
        'record-max-bytes': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }),
  );
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
    const knob = KNOB_BY_FLAG.get(t.name);
    const toggle = SWITCH_BY_FLAG.get(t.name);
    if (knob !== undefined) spec.policy[knob] = n(`--${t.name}`);
    else if (toggle !== undefined) spec.policy[toggle] = true;
    else if (t.name === 'listen') spec.listen.push(v);
    else if (t.name === 'workers') spec.workers = n('--workers');
    else if (t.name === 'config') spec.config = v;
    else if (t.name === 'policy') spec.policyFile = v;
    else if (t.name === POLICY_LISTS.connect.flag) (spec.policy.connect ??= []).push(v);
  }
  return { host, specs };
}

export async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_IO', `cannot read ${what} ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new WasmuxError(
      what === 'policy' ? 'WASMUX_ERR_BAD_POLICY' : 'WASMUX_ERR_BAD_ARGUMENT',
      `${what} ${path} is not valid JSON: ${(e as Error).message}`,
    );
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

/** The PROXY protocol refusals of a counters line ("" when there were none). */
function proxyText(rejected: Record<string, number>): string {
  const some = Object.entries(rejected).filter(([, n]) => n > 0);
  return some.length === 0 ? '' : `, PROXY headers refused: ${some.map(([k, n]) => `${k} ${n}`).join(', ')}`;
}

function printStats(servers: PluginServer[]): void {
  for (const s of servers) {
    for (const { turns: _turns, ...st } of s.stats()) {
      const ends =
        Object.entries(st.ends)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || 'none';
      say(
        `${s.name}[${st.instance}] ${st.running ? 'running' : 'ended'}: accepted ${st.accepted}, open ${st.open}, ` +
          `bytes in ${st.bytesIn}, out ${st.bytesOut}, events ${st.events}, refused ${st.refused}, ` +
          `idle-closed ${st.idleClosed}, memory ${st.memoryBytes}, restarts ${st.restarts}, ends: ${ends}` +
          proxyText(st.proxyRejected),
        'info',
        'stderr',
        { source: s.name, instance: st.instance, fields: { ...st } },
      );
    }
    const r = s.reloadStats();
    if (r.done + r.failed > 0) {
      const drained =
        r.drained
          .map(
            (d) =>
              `v${d.generation} ${d.connections}${d.cut ? ` (${d.cut} cut)` : ''}` +
              (d.handedOver + d.handoverFailed > 0 ? ` (${d.handedOver} moved, ${d.handoverFailed} failed)` : ''),
          )
          .join(', ') || 'none';
      say(
        `${s.name} reloads: done ${r.done}, failed ${r.failed}; version ${r.generation} (sha256 ${r.sha256}); listeners handed over ${r.listenersHandedOver}; ` +
          `connections handed over ${r.handoversDone}, failed ${r.handoversFailed}; connections drained per version: ${drained}`,
        'info',
        'stderr',
        { source: s.name, fields: { ...r } },
      );
    }
  }
}

/** The policy layers of a spec: its file (read now), then its flags. */
/** A policy's layers: the file's (as read), then the flags over it: a flag overrides the file's value, connect rules add up. */
export function policyLayers(file: string | null, input: PolicyInput | null, flags: PolicyInput): PolicyLayer[] {
  const layers: PolicyLayer[] = [{ where: 'command line', input: flags }];
  if (file !== null && input !== null) layers.unshift({ where: `policy ${file}`, input });
  return layers;
}

async function specPolicy(spec: PluginSpec): Promise<PolicyLayer[]> {
  const file = spec.policyFile || null;
  return policyLayers(file, file === null ? null : ((await readJson(file, 'policy')) as PolicyInput), spec.policy);
}

/**
 * --record's file per plugin: the file itself for one plugin, else
 * `<file>.<plugin name>` (a name that repeats gets `-2`, `-3`...). The
 * directory must be writable: said now, not by each instance.
 */
function recordingFiles(host: Record<string, string | boolean>, specs: PluginSpec[]): string[] | null {
  if (host.record === undefined) return null;
  if (typeof host.record !== 'string' || host.record === '') throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', '--record needs a file');
  const file = resolvePath(host.record);
  try {
    accessSync(dirname(file), fsConstants.W_OK);
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--record ${host.record}: cannot write there (${(e as Error).message})`);
  }
  if (specs.length === 1) return [file];
  const seen = new Map<string, number>();
  return specs.map((s) => {
    const name = basename(s.plugin).replace(/\.wasm$/, '');
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return `${file}.${name}${n === 1 ? '' : `-${n}`}`;
  });
}

export async function runCommand(argv: string[]): Promise<number> {
  const { host, specs: cliSpecs } = parseCommandLine(argv);
  if (host.help) {
    process.stdout.write(runHelp());
    return 0;
  }
  const readSpecs = async () => (typeof host.manifest === 'string' ? [...(await manifestSpecs(host.manifest)), ...cliSpecs] : cliSpecs);
  const specs = await readSpecs();
  if (specs.length === 0) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', 'run needs a plugin file (see wasmux run --help)');
  const level = typeof host['log-level'] === 'string' ? host['log-level'] : 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level)) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--log-level must be trace, debug, info, warn or error (got "${level}")`);
  }
  const drainMs =
    integer('--drain-timeout', typeof host['drain-timeout'] === 'string' ? host['drain-timeout'] : undefined) ?? DRAIN_DEFAULT_MS;
  const delayMs = integer('--shutdown-delay', typeof host['shutdown-delay'] === 'string' ? host['shutdown-delay'] : undefined) ?? 0;
  const backend = typeof host.backend === 'string' ? host.backend : undefined;
  const format = typeof host['log-format'] === 'string' ? host['log-format'] : 'text';
  if (format !== 'text' && format !== 'json') {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--log-format must be text or json (got "${format}")`);
  }
  jsonFormat = format === 'json';
  const logger: Logger = jsonFormat ? jsonStderrLogger(level as 'info') : stderrLogger(level as 'info');
  const recordFiles = recordingFiles(host, specs);
  const recordMaxBytes = integer('--record-max-bytes', typeof host['record-max-bytes'] === 'string' ? host['record-max-bytes'] : undefined);
  if (recordMaxBytes !== undefined && recordFiles === null) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', '--record-max-bytes needs --record <file>');
  }
  if (recordMaxBytes === 0) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', '--record-max-bytes must be at least 1');

  if (host.admin !== undefined && typeof host.admin !== 'string')
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', '--admin needs host:port');
  const adminAt = typeof host.admin === 'string' ? parseAdminAddress(host.admin) : null;

  const servers: PluginServer[] = [];
  // Set by the first SIGTERM/SIGINT; /readyz says 503 from then on (--shutdown-delay).
  let signalled = false;
  let delay: NodeJS.Timeout | null = null;
  // The admin endpoint first: a port in use fails before any plugin starts,
  // and /readyz says 503 while they start.
  let admin: AdminServer | null = null;
  if (adminAt) {
    admin = await serveAdmin({ ...adminAt, servers: () => servers, expected: specs.length, stopping: () => signalled });
    say(`wasmux: admin endpoint on ${admin.url}`, 'info', 'stdout');
  }
  const stopAll = () => Promise.all(servers.map((s) => s.stop()));
  try {
    for (const [i, spec] of specs.entries()) {
      const record = recordFiles === null ? undefined : { file: recordFiles[i]!, maxBytes: recordMaxBytes };
      const policy = await specPolicy(spec);
      servers.push(
        await serve({
          plugin: spec.plugin,
          listen: spec.listen,
          workers: spec.workers,
          config: spec.config,
          policy,
          backend,
          logger,
          record,
        }),
      );
    }
  } catch (e) {
    await stopAll();
    await admin?.close();
    throw e;
  }

  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      if (delay) clearTimeout(delay);
      say(`wasmux: ${sig} again, stopping at once`);
      void stopAll();
      return;
    }
    signalled = true;
    const drain = () => {
      delay = null;
      say(`wasmux: ${sig}, draining (up to ${drainMs} ms)`);
      void Promise.all(servers.map((s) => s.drain(drainMs)));
    };
    if (delayMs === 0) return drain();
    say(`wasmux: ${sig}, not ready (/readyz 503); serving ${delayMs} ms more before draining`);
    delay = setTimeout(drain, delayMs);
  };
  const onUsr2 = () => printStats(servers);
  // SIGHUP: every plugin reloaded from what the command line names, read
  // again; one reload at a time (a SIGHUP during one waits for it).
  let reloads = Promise.resolve();
  const reloadAll = async (): Promise<void> => {
    if (signalled) return;
    let fresh: PluginSpec[];
    try {
      fresh = await readSpecs();
      if (fresh.length !== specs.length) {
        throw new WasmuxError(
          'WASMUX_ERR_RELOAD',
          `the manifest now lists ${fresh.length} plugins, not ${specs.length}: restart to change which plugins run`,
        );
      }
    } catch (e) {
      say(
        `wasmux: reload failed: ${(e as WasmuxError).code ?? 'WASMUX_ERR_RELOAD'}: ${(e as Error).message}; every plugin serves on`,
        'error',
      );
      return;
    }
    await Promise.all(
      servers.map(async (s, i) => {
        const spec = fresh[i]!;
        try {
          if (spec.workers !== specs[i]!.workers || spec.listen.join() !== specs[i]!.listen.join()) {
            throw new WasmuxError(
              'WASMUX_ERR_RELOAD',
              'its addresses or worker count changed: a reload keeps them (restart to change them)',
            );
          }
          const r = await s.reload({
            plugin: spec.plugin,
            config: spec.config ?? '',
            policy: await specPolicy(spec),
            drainTimeoutMs: drainMs,
          });
          say(`wasmux: ${s.name} reloaded: version ${r.generation} (sha256 ${r.sha256}) serving, ready in ${r.readyMs} ms`);
        } catch (e) {
          say(
            `wasmux: reload of ${s.name} failed: ${(e as WasmuxError).code ?? 'WASMUX_ERR_RELOAD'}: ${(e as Error).message}; version ${s.generation} serves on`,
            'error',
          );
        }
      }),
    );
  };
  const onHup = () => {
    say('wasmux: SIGHUP, reloading');
    reloads = reloads.then(reloadAll);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGUSR2', onUsr2);
  process.on('SIGHUP', onHup);

  let failed = false;
  await Promise.all(
    servers.map(async (s) => {
      try {
        await s.ready;
        const where = s.addresses.map(String).join(', ') || '(no addresses)';
        const n = s.stats().length;
        say(
          `wasmux: ${s.name} listening on ${where} (backend ${s.backend}, ${n} worker${n === 1 ? '' : 's'}, sha256 ${s.sha256})`,
          'info',
          'stdout',
        );
      } catch (e) {
        failed = true;
        // The message may quote the guest (its run() error): one line, escaped, like every log line.
        say(`wasmux: error ${(e as WasmuxError).code ?? 'WASMUX_ERR_PLUGIN_FAILED'}: ${(e as Error).message}`, 'error');
      }
    }),
  );

  // Every plugin ends: drained and stopped by a signal, or by itself.
  await Promise.all(servers.map((s) => s.finished()));
  if (delay) clearTimeout(delay);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  process.off('SIGUSR2', onUsr2);
  process.off('SIGHUP', onHup);
  await admin?.close();
  printStats(servers);
  if (servers.some((s) => s.failed)) failed = true;
  return failed ? 1 : 0;
}
