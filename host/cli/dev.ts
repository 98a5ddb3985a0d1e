/**
 * `wasmux dev`: a plugin project built, served, and on every change of its
 * sources rebuilt and reloaded in place (server.reload), until SIGINT or
 * SIGTERM. The build is `wasmux build`'s (host/build/plugin-build.ts), run in
 * a thread of its own (host/build/build-thread.ts); the serving is
 * `wasmux run`'s, through serve(); the watching is host/build/watch.ts.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import {
  serve,
  loadPlugin,
  buildPolicy,
  describePolicy,
  parseAddress,
  resolveBackend,
  stderrLogger,
  DEFAULTS,
  KNOB_NAMES,
  POLICY_KNOBS,
  POLICY_LISTS,
  POLICY_SWITCHES,
  SWITCH_NAMES,
  type KnobName,
  type LoadedPlugin,
  type Logger,
  type PluginServer,
  type PolicyInput,
  type PolicyLayer,
} from '../index.js';
import { WasmuxError } from '../errors.js';
import { BUILD_TARGETS, type BuiltPlugin } from '../build/plugin-build.js';
import { BuildThread } from '../build/build-thread.js';
import { SourceWatcher, watchedRoots } from '../build/watch.js';
import { escapeControl, writeStderrLine } from '../supervisor/logger.js';
import { parseAdminAddress, serveAdmin, type AdminServer } from '../supervisor/admin.js';
import { integer, parsed } from './args.js';
import { DRAIN_DEFAULT_MS, knobHelp, optionHelp, policyLayers, readJson, switchHelp } from './run.js';

/**
 * The name dev serves the plugin under: the one `wasmux run` gives the
 * project's release build (asconfig.json's `targets.release.outFile`, or
 * `options.outFile`, without `.wasm`), so that log lines and metric names
 * are those of production; else the built file's.
 */
export function servedName(projectDir: string, builtFile: string): string {
  try {
    const c = JSON.parse(readFileSync(resolve(projectDir, 'asconfig.json'), 'utf8'));
    const out = c?.targets?.release?.outFile ?? c?.options?.outFile;
    if (typeof out === 'string' && /[^/\\]\.wasm$/.test(out)) return basename(out).replace(/\.wasm$/, '');
  } catch {
    // the build read it: a file it could not read has no say here
  }
  return basename(builtFile).replace(/\.wasm$/, '');
}

/** Where a project serves when neither --listen nor its package.json says: a free port, printed. */
const FALLBACK_LISTEN = '127.0.0.1:0';

export function devHelp(): string {
  return `Usage: wasmux dev [<dir>] [--target debug|release] [options]

Develops the plugin project in <dir> (default: the current directory):
builds it as wasmux build does, serves it as wasmux run does, and on every
change of its sources builds it again and reloads the server in place (the
same addresses; connections already open stay with the old version until
they close or the drain ends).

Watched: asconfig.json, package.json, the top directory of each of
asconfig.json's entries (assembly/; followed when asconfig.json changes)
and wit/, if any; not node_modules nor the build output. A burst of changes (an editor saving) is one build;
changes during a build make one more build after it. A build whose bytes are
the ones served is not reloaded. The builds run in a thread that stays up
between them (a rebuild is much faster than the first build); a change of
package.json starts it anew, loading the toolchain again.

A build that fails prints asc's diagnostics, as wasmux build does, and the
version served so far goes on serving (before the first success nothing is
served): fix the file and save. A new version that fails to start (a trap
in run) is not reloaded either: the old one serves on. Each reload prints
one line with the old and the new sha256 and how long the build took.
The component is written where wasmux build --target <target> writes it.
A missing toolchain or asconfig.json at the first build ends dev (status 1).

Options:
${optionHelp('--target <name>', `the asconfig.json target: ${BUILD_TARGETS.join(' or ')}; debug keeps the names a trap's log line shows`, 'debug')}

Plugin options (as wasmux run's):
${optionHelp(`--${POLICY_LISTS.listen.flag} ${POLICY_LISTS.listen.arg}`, 'an address to serve; repeat for several. Without one: the --listen of package.json\'s "start" script (what wasmux new writes), else 127.0.0.1:0 (a free port, printed)')}
${optionHelp('--workers <n>', 'instances sharing the addresses', String(DEFAULTS.workers))}
${optionHelp('--config <string>', 'passed to the plugin as ctx.config', '""')}
${optionHelp('--policy <file.json>', "the plugin's policy; flags override it. Watched: a change reloads the version served with it (no build); one that cannot be used is said, and the policy before stays")}
${optionHelp(`--${POLICY_LISTS.connect.flag} ${POLICY_LISTS.connect.arg}`, 'allow outbound connections; repeat for several', 'none allowed')}
${switchHelp()}
${knobHelp()}

Host options:
${optionHelp('--backend <name>', 'I/O backend (see wasmux run --help)', 'auto')}
${optionHelp('--drain-timeout <ms>', "the time open connections get to finish: the old version's after a reload, and on SIGTERM/SIGINT", String(DRAIN_DEFAULT_MS))}
${optionHelp('--log-level <level>', 'trace, debug, info, warn, error', 'info')}
${optionHelp('--admin <host:port>', "the admin endpoint of wasmux run (/metrics with the plugin's own metrics, /healthz, /readyz, /plugins) for the version served now; /readyz says 503 while nothing is served (before the first good build); port 0 picks a free port (printed)", 'none')}
${optionHelp('-h, --help', 'show this help')}

Signals: SIGTERM/SIGINT stop watching, drain and stop (a second one stops at
once); the status is then 0.
`;
}

interface DevOptions {
  projectDir: string;
  target: string;
  listen: string[];
  workers?: number;
  config?: string;
  /** The command line's policy flags (the top layer). */
  flags: PolicyInput;
  /** --policy, resolved (null: none); watched, and applied again when it changes. */
  policyFile: string | null;
  /** The policy file as read at start (null: none). */
  policyInput: PolicyInput | null;
  backend?: string;
  drainMs: number;
  logger: Logger;
  admin: { host: string; port: number } | null;
}

const KNOB_BY_FLAG = new Map<string, KnobName>(KNOB_NAMES.map((k) => [POLICY_KNOBS[k].flag, k]));

/** The --listen addresses of package.json's "start" script when it runs `wasmux run` (a `wasmux new` project's). */
export function startScriptListen(projectDir: string): string[] {
  let start: unknown;
  try {
    start = JSON.parse(readFileSync(resolve(projectDir, 'package.json'), 'utf8'))?.scripts?.start;
  } catch {
    return [];
  }
  if (typeof start !== 'string' || !/\bwasmux\s+run\b/.test(start)) return [];
  return [...start.matchAll(/--listen(?:\s+|=)(\S+)/g)].map((m) => m[1]!);
}

async function parseDevArgs(argv: string[]): Promise<DevOptions | null> {
  const { values, positionals } = parsed(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        target: { type: 'string', default: 'debug' },
        listen: { type: 'string', multiple: true },
        workers: { type: 'string' },
        config: { type: 'string' },
        policy: { type: 'string' },
        [POLICY_LISTS.connect.flag]: { type: 'string', multiple: true },
        ...Object.fromEntries([...KNOB_BY_FLAG.keys()].map((flag) => [flag, { type: 'string' as const }])),
        ...Object.fromEntries(SWITCH_NAMES.map((k) => [POLICY_SWITCHES[k].flag, { type: 'boolean' as const }])),
        backend: { type: 'string' },
        'drain-timeout': { type: 'string' },
        'log-level': { type: 'string' },
        admin: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }),
  );
  if (values.help) {
    process.stdout.write(devHelp());
    return null;
  }
  if (positionals.length > 1)
    throw new WasmuxError(
      'WASMUX_ERR_BAD_ARGUMENT',
      `dev takes one project directory (got ${positionals.length}: ${positionals.join(' ')})`,
    );
  const projectDir = resolve(positionals[0] ?? '.');
  if (!existsSync(projectDir) || !statSync(projectDir).isDirectory())
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${positionals[0] ?? '.'} is not a directory`);
  const target = values.target as string;
  if (!(BUILD_TARGETS as readonly string[]).includes(target))
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--target must be ${BUILD_TARGETS.join(' or ')} (got "${target}")`);
  const level = (values['log-level'] as string | undefined) ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level))
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--log-level must be trace, debug, info, warn or error (got "${level}")`);

  const flags: PolicyInput = {};
  const byName = values as Record<string, unknown>;
  for (const [flag, knob] of KNOB_BY_FLAG) {
    const v = integer(`--${flag}`, byName[flag] as string | undefined);
    if (v !== undefined) flags[knob] = v;
  }
  for (const k of SWITCH_NAMES) if (byName[POLICY_SWITCHES[k].flag] === true) flags[k] = true;
  const connect = byName[POLICY_LISTS.connect.flag] as string[] | undefined;
  if (connect) flags.connect = connect;
  const policyFile = typeof values.policy === 'string' ? resolve(values.policy) : null;
  const policyInput = policyFile ? ((await readJson(policyFile, 'policy')) as PolicyInput) : null;

  const given = (values.listen as string[] | undefined) ?? [];
  const listen = given.length > 0 ? given : startScriptListen(projectDir);
  const backend = values.backend as string | undefined;
  // Everything the command line can get wrong is said now, not after the first build.
  buildPolicy(policyLayers(policyFile, policyInput, flags));
  for (const a of listen) parseAddress(a);
  if (backend !== undefined) resolveBackend(backend);
  const workers = integer('--workers', values.workers as string | undefined);
  if (workers !== undefined && (workers < 1 || workers > 256))
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--workers must be an integer from 1 to 256 (got ${workers})`);
  const admin = typeof values.admin === 'string' ? parseAdminAddress(values.admin) : null;
  return {
    projectDir,
    target,
    listen: listen.length > 0 ? listen : [FALLBACK_LISTEN],
    workers,
    config: values.config as string | undefined,
    flags,
    policyFile,
    policyInput,
    backend,
    drainMs: integer('--drain-timeout', values['drain-timeout'] as string | undefined) ?? DRAIN_DEFAULT_MS,
    logger: stderrLogger(level as 'info'),
    admin,
  };
}

/** Ends dev with a status (not an error of its own: what went wrong is printed). */
class EndWith extends Error {
  constructor(readonly status: number) {
    super(`exit ${status}`);
  }
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
/** One line of dev's own on stdout (a file name may hold a newline: escaped, as every log line). */
const say = (line: string) => process.stdout.write(`wasmux dev: ${escapeControl(line)}\n`);

/** Codes of a first serve that no change of the sources can fix: dev ends with them. */
const FATAL_SERVE = new Set(['WASMUX_ERR_LISTEN', 'WASMUX_ERR_BACKEND_UNAVAILABLE', 'WASMUX_ERR_BAD_ARGUMENT', 'WASMUX_ERR_BAD_POLICY']);

class DevSession {
  /** The server of the version served (null: none); its sha256 is that version's. */
  private server: PluginServer | null = null;
  /** The version served, as loaded: a policy change reloads it (the file may hold a newer build that failed). */
  private servedPlugin: LoadedPlugin | null = null;
  /** Whether a server ever started: an address in use then is no reason to end dev. */
  private servedOnce = false;
  /** The addresses served the first time, port 0 resolved: a new server after one ended takes them again. */
  private listen: string[];
  private watcher: SourceWatcher | null = null;
  /** The watch of the --policy file's directory (null: no --policy). */
  private policyWatcher: SourceWatcher | null = null;
  /** The policy of the version served (or of the next serve). */
  private policy: PolicyLayer[];
  /** The --policy file changed and has not been read since. */
  private policyChanged = false;
  /** The builds' thread, kept from one build to the next (restarted when package.json changes). */
  private readonly builder = new BuildThread();
  private cycle: Promise<void> | null = null;
  /** Changes seen while a build ran: one more build follows. */
  private changed: string[] = [];
  private stopping = false;
  private builtOnce = false;
  private finish!: (code: number) => void;
  private fail!: (e: unknown) => void;
  readonly ended: Promise<number>;

  constructor(private readonly o: DevOptions) {
    this.listen = o.listen;
    this.policy = policyLayers(o.policyFile, o.policyInput, o.flags);
    this.ended = new Promise((res, rej) => {
      this.finish = res;
      this.fail = rej;
    });
  }

  start(): void {
    this.watch();
    if (this.o.policyFile !== null) {
      // Its directory's watch, for this one name (whatever it ends with; a rename over it included).
      const name = basename(this.o.policyFile);
      this.policyWatcher = new SourceWatcher(
        dirname(this.o.policyFile),
        [{ dir: '', recursive: false }],
        () => {
          this.policyChanged = true;
          this.onChange([]);
        },
        { counts: (path) => path === name },
      );
    }
    this.onChange([]);
  }

  /** The server of the version served now (none before the first good build, or after it ended). */
  servers(): PluginServer[] {
    return this.server ? [this.server] : [];
  }

  /** Whether a signal has come (the admin endpoint's /readyz then says 503 "stopping"). */
  get isStopping(): boolean {
    return this.stopping;
  }

  /** Watches what asconfig.json's entries name now (again, after it changed). */
  private watch(): void {
    const before = this.watcher?.roots;
    this.watcher?.close();
    const roots = watchedRoots(this.o.projectDir);
    const policyPath = this.o.policyFile === null ? null : relative(this.o.projectDir, this.o.policyFile).split(sep).join('/');
    // The --policy file, when it is among the sources, is the policy watch's: no build for it.
    this.watcher = new SourceWatcher(this.o.projectDir, roots, (paths) => {
      const sources = paths.filter((p) => p !== policyPath);
      if (sources.length > 0) this.onChange(sources);
    });
    const names = roots.map((r) => (r.dir === '' ? '.' : `${r.dir}/`)).join(', ');
    if (before === undefined) say(`watching ${names} in ${this.o.projectDir} (target ${this.o.target})`);
    else if (JSON.stringify(before) !== JSON.stringify(roots)) say(`watching ${names} now`);
  }

  private onChange(paths: string[]): void {
    if (this.stopping) return;
    this.changed.push(...paths.filter((p) => !this.changed.includes(p)));
    this.cycle ??= this.runCycle().finally(() => (this.cycle = null));
  }

  /** Builds until no change came during the last build; one build at a time. */
  private async runCycle(): Promise<void> {
    try {
      let first = true;
      while (!this.stopping && (first || this.changed.length > 0 || this.policyChanged)) {
        if (this.policyChanged) {
          // The version served is reloaded with the new policy first, without a build; a policy it
          // refuses is dropped there. Sources changed too: they are built next, under what is in force.
          this.policyChanged = false;
          const layers = await this.readPolicy();
          if (layers !== null && this.server !== null) await this.applyPolicy(this.server, layers);
          else if (layers !== null) this.policy = layers;
          // Nothing else changed: no build (but the very first one).
          if (this.changed.length === 0 && this.builtOnce) {
            first = false;
            continue;
          }
        }
        const paths = this.changed.splice(0);
        // The toolchain may have changed (npm install): the next build loads it anew.
        if (paths.includes('package.json')) await this.builder.restart();
        // The entries may be elsewhere now.
        if (paths.includes('asconfig.json') && !this.stopping) this.watch();
        if (paths.length > 0) say(`changed ${paths.join(', ')}; building`);
        else if (first && !this.builtOnce) say('building');
        first = false;
        await this.buildOnce();
      }
    } catch (e) {
      // Only a first build that cannot work, or a first serve nothing fixes, gets here: dev ends.
      if (this.stopping) return;
      this.stopping = true;
      await this.stopAll(true);
      if (e instanceof EndWith) this.finish(e.status);
      else this.fail(e);
    }
  }

  private async buildOnce(): Promise<void> {
    const t0 = performance.now();
    let built: BuiltPlugin;
    try {
      built = await this.builder.build(
        { projectDir: this.o.projectDir, target: this.o.target, isTTY: process.stderr.isTTY === true },
        (text) => process.stderr.write(text),
      );
    } catch (e) {
      if (this.stopping) return;
      const first = !this.builtOnce;
      this.builtOnce = true;
      if (e instanceof WasmuxError) writeStderrLine(`wasmux: error ${e.code}: ${e.message}`);
      else {
        // Not the sources' fault (the thread died): the next build starts from a fresh thread.
        writeStderrLine(`wasmux dev: ${(e as Error).message}`);
        await this.builder.restart();
      }
      // Nothing to wait for: the project is not one (no asconfig.json) or lacks its toolchain.
      if (
        first &&
        e instanceof WasmuxError &&
        (e.code === 'WASMUX_ERR_TOOLCHAIN' || !existsSync(resolve(this.o.projectDir, 'asconfig.json')))
      )
        throw new EndWith(1);
      writeStderrLine(
        `wasmux dev: build failed after ${seconds(performance.now() - t0)}; ${this.server ? `still serving sha256 ${this.server.sha256}` : 'nothing served yet'}; waiting for a change`,
      );
      return;
    }
    this.builtOnce = true;
    const buildMs = performance.now() - t0;
    if (this.stopping) return;
    const out = resolve(this.o.projectDir, built.outFile ?? `build/${this.o.target}.wasm`);
    try {
      await mkdir(dirname(out), { recursive: true });
      // Never a half-written plugin where the server (or wasmux run) may read it.
      await writeFile(`${out}.partial`, built.bytes);
      await rename(`${out}.partial`, out);
    } catch (e) {
      writeStderrLine(`wasmux: error WASMUX_ERR_IO: cannot write ${out}: ${(e as Error).message}`);
      writeStderrLine(`wasmux dev: ${this.server ? `still serving sha256 ${this.server.sha256}` : 'nothing served'}; waiting for a change`);
      return;
    }
    if (this.server !== null && built.sha256 === this.server.sha256) {
      say(`built in ${seconds(buildMs)}: sha256 unchanged (${built.sha256}); not reloaded`);
      return;
    }
    if (this.server === null) await this.serveFirst(out);
    else await this.reload(this.server, out, built.sha256, buildMs);
  }

  private async serveFirst(file: string): Promise<void> {
    let server: PluginServer;
    let plugin: LoadedPlugin;
    try {
      plugin = await loadPlugin(file, servedName(this.o.projectDir, file));
      server = await serve({
        plugin,
        listen: this.listen,
        workers: this.o.workers,
        config: this.o.config,
        policy: this.policy,
        backend: this.o.backend,
        logger: this.o.logger,
      });
    } catch (e) {
      if (e instanceof WasmuxError && (this.servedOnce || !FATAL_SERVE.has(e.code))) {
        writeStderrLine(`wasmux: error ${e.code}: ${e.message}`);
        writeStderrLine('wasmux dev: not served; waiting for a change');
        return;
      }
      throw e;
    }
    try {
      await server.ready;
    } catch (e) {
      await server.stop();
      if (this.stopping) return;
      writeStderrLine(`wasmux: error ${(e as WasmuxError).code ?? 'WASMUX_ERR_PLUGIN_FAILED'}: ${(e as Error).message}`);
      writeStderrLine('wasmux dev: not served; waiting for a change');
      return;
    }
    if (this.stopping) {
      await server.stop();
      return;
    }
    this.server = server;
    this.servedPlugin = plugin;
    this.servedOnce = true;
    this.listen = server.addresses.map(String);
    const n = server.stats().length;
    // wasmux run's start line, word for word.
    process.stdout.write(
      `wasmux: ${server.name} listening on ${server.addresses.map(String).join(', ')} ` +
        `(backend ${server.backend}, ${n} worker${n === 1 ? '' : 's'}, sha256 ${server.sha256})\n`,
    );
    // A plugin that ends by itself (returns from run, a crash loop): the next good build serves it anew.
    void server.finished().then(async () => {
      if (this.stopping || this.server !== server) return;
      this.server = null;
      this.servedPlugin = null;
      await server.stop(); // its addresses released for the next
      writeStderrLine(
        `wasmux dev: ${server.name} ended${server.failed ? ` (${server.failed.code}: ${server.failed.message})` : ''}; serving it again at the next change`,
      );
    });
  }

  private async reload(server: PluginServer, file: string, sha256: string, buildMs: number): Promise<void> {
    const old = server.sha256;
    try {
      // The policy in force (a new one was applied, or dropped, before the build).
      const plugin = await loadPlugin(file);
      const r = await server.reload({ plugin, policy: this.policy, drainTimeoutMs: this.o.drainMs });
      if (this.stopping) return;
      this.servedPlugin = plugin;
      say(`reloaded ${server.name}: sha256 ${old} -> ${r.sha256} (built in ${seconds(buildMs)}, ready in ${Math.round(r.readyMs)} ms)`);
    } catch (e) {
      if (this.stopping) return;
      if (!(e instanceof WasmuxError)) throw e;
      writeStderrLine(`wasmux: error ${e.code}: ${e.message}`);
      writeStderrLine(`wasmux dev: not reloaded (sha256 ${sha256}); still serving sha256 ${old}; waiting for a change`);
    }
  }

  /** Reads the --policy file again: its layers, or null when it cannot be used (said) or changes nothing. */
  private async readPolicy(): Promise<PolicyLayer[] | null> {
    const file = this.o.policyFile!;
    let layers: PolicyLayer[];
    let built: ReturnType<typeof buildPolicy>;
    try {
      layers = policyLayers(file, (await readJson(file, 'policy')) as PolicyInput, this.o.flags);
      built = buildPolicy(layers);
    } catch (e) {
      if (!(e instanceof WasmuxError)) throw e;
      writeStderrLine(`wasmux: error ${e.code}: ${e.message}`);
      writeStderrLine(
        `wasmux dev: policy ${file} not applied; ${this.server ? 'still serving with the policy before it' : 'nothing served yet'}; waiting for a change`,
      );
      return null;
    }
    // Saved without a change (an editor's save): nothing to reload.
    // (Against the layers in force, not the server's policy: serve() adds the served addresses to that.)
    const current = buildPolicy(this.policy);
    if (JSON.stringify(describePolicy(built)) === JSON.stringify(describePolicy(current))) {
      say(`policy ${file} saved unchanged; not reloaded`);
      return null;
    }
    say(`changed policy ${file}${this.server ? '; reloading' : ''}`);
    return layers;
  }

  /** Reloads the version served with `layers`; a policy it refuses is dropped (the one before stays). */
  private async applyPolicy(server: PluginServer, layers: PolicyLayer[]): Promise<void> {
    try {
      const r = await server.reload({ plugin: this.servedPlugin!, policy: layers, drainTimeoutMs: this.o.drainMs });
      if (this.stopping) return;
      this.policy = layers;
      say(`reloaded ${server.name} with policy ${this.o.policyFile}: sha256 ${r.sha256} (ready in ${Math.round(r.readyMs)} ms)`);
    } catch (e) {
      if (this.stopping) return;
      if (!(e instanceof WasmuxError)) throw e;
      writeStderrLine(`wasmux: error ${e.code}: ${e.message}`);
      writeStderrLine(`wasmux dev: policy ${this.o.policyFile} not applied; still serving with the policy before it; waiting for a change`);
    }
  }

  /** Stops watching and building; drains the server, or stops it at once. */
  private async stopAll(now: boolean): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    this.policyWatcher?.close();
    this.policyWatcher = null;
    const build = this.builder.close();
    if (now) await this.server?.stop();
    else await this.server?.drain(this.o.drainMs);
    await build;
  }

  /** A signal: stop watching and building, drain (a second call: stop at once), then end with status 0. */
  async shutdown(): Promise<void> {
    const again = this.stopping;
    this.stopping = true;
    await this.stopAll(again);
    if (again) return;
    // A reload in flight settles (refused: the server stops) before the end.
    await this.cycle?.catch(() => {});
    // A server that a first serve in flight started is stopped by it.
    this.finish(0);
  }
}

export async function devCommand(argv: string[]): Promise<number> {
  const o = await parseDevArgs(argv);
  if (o === null) return 0;
  const session = new DevSession(o);
  // The admin endpoint first, as in wasmux run: an address in use ends dev before the first build.
  let admin: AdminServer | null = null;
  if (o.admin) {
    admin = await serveAdmin({ ...o.admin, servers: () => session.servers(), expected: 1, stopping: () => session.isStopping });
    process.stdout.write(`wasmux: admin endpoint on ${admin.url}\n`);
  }
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      writeStderrLine(`wasmux dev: ${sig} again, stopping at once`);
      void session.shutdown();
      return;
    }
    signalled = true;
    writeStderrLine(`wasmux dev: ${sig}, stopping (draining up to ${o.drainMs} ms)`);
    void session.shutdown();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    session.start();
    return await session.ended;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await admin?.close();
  }
}
