/**
 * Building a plugin: asconfig.json -> asc -> core module -> jco (embed the
 * world, make the component) -> the loader's checks. The one owner of the
 * build: `wasmux build` (host/cli/build.ts) and this repository's own
 * build/plugins.mjs both call buildPlugin.
 *
 * asc reads asconfig.json itself (`--config`, `--target`, `extends`), so the
 * file means what AssemblyScript says it means; on top of it build applies
 * the options the runtime needs and refuses a user setting that contradicts
 * one of them. Reproducible: no path or time reaches the output, so the same
 * sources give the same bytes.
 *
 * assemblyscript and jco are not dependencies of wasmux: they are loaded from
 * the plugin project's own node_modules (its devDependencies).
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, join, parse, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WasmuxError } from '../errors.js';
import { compilePlugin } from '../loader/plugin.js';

/** The wasmux package running this build. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PLUGIN_WORLD = 'wasmux:plugin/plugin';
/** The name asc's output gets inside the in-memory file system; never written. */
const CORE_OUT = 'plugin.core.wasm';

export const BUILD_TARGETS = ['release', 'debug'] as const;
export type BuildTarget = (typeof BUILD_TARGETS)[number];

export interface BuildRequest {
  /** The plugin project: asconfig.json, node_modules and relative paths are resolved here. */
  readonly projectDir: string;
  /** The asconfig.json target. */
  readonly target: string;
  /** The asconfig file, relative to projectDir. [asconfig.json] */
  readonly config?: string;
  /** An entry file compiled besides asconfig's `entries` (this repository builds one plugin per entry). */
  readonly entry?: string;
  /** The WIT package and world to embed. [the SDK's package: its wit/, wasmux:plugin/plugin] */
  readonly wit?: { readonly path: string; readonly world: string };
  /**
   * Where the sources find the SDK when they import it by a relative path
   * (this repository's own plugins): the directory of its abort.ts, which
   * asc's abort is pointed at (asc names a source by its path relative to
   * projectDir). [none: the sources `import ... from "wasmux"`, the
   * project's node_modules/wasmux, which asc names ~lib/wasmux/...]
   */
  readonly sdkDir?: string;
  /** Run the loader's checks (those `wasmux run` applies) on the result. [true] */
  readonly check?: boolean;
  /** Where asc's diagnostics go, exactly as asc prints them. */
  readonly diagnostics: { write(text: string): unknown; isTTY?: boolean };
}

export interface BuiltPlugin {
  readonly bytes: Uint8Array;
  readonly sha256: string;
  /** The target's `outFile` from asconfig.json, resolved in projectDir, if it sets one. */
  readonly outFile: string | null;
}

// The toolchain's surface this module uses (its own types are not a dependency of wasmux).
interface AscResult {
  error: Error | null;
}
interface AscDiagnostic {
  message: string;
  code: number;
  category: number;
  range: { start: number; source: { normalizedPath: string } | null } | null;
}
interface AscApi {
  main(
    argv: string[],
    options: {
      stdout: { write(s: string): unknown };
      stderr: { write(s: string): unknown; isTTY?: boolean };
      writeFile?(name: string, contents: Uint8Array | string, baseDir: string): void;
      reportDiagnostic?(d: AscDiagnostic): void;
    },
  ): Promise<AscResult>;
}
/** asc's DiagnosticCategory.Error. */
const ASC_ERROR = 3;
interface JcoApi {
  componentEmbed(opts: { binary: Uint8Array; witPath: string; world: string; stringEncoding: 'utf8' }): Promise<Uint8Array>;
  componentNew(binary: Uint8Array): Promise<Uint8Array>;
}
interface Toolchain {
  asc: AscApi;
  jco: JcoApi;
  setPreopens(preopens: Record<string, string>): void;
  /** The project's own wasmux package (its SDK and WIT), or null when it has none. Its real path: jco's WIT reader refuses to follow a symbolic link (npm links a local package). */
  wasmuxRoot: string | null;
}

interface PackageJson {
  version: string;
  peerDependencies: Record<string, string>;
  exports?: Record<string, unknown>;
}
const readPackage = (file: string): PackageJson => JSON.parse(readFileSync(file, 'utf8'));

/** The tested versions: wasmux's own optional peerDependencies. */
function testedVersions(): Record<string, string> {
  return readPackage(join(PACKAGE_ROOT, 'package.json')).peerDependencies;
}

/** The `npm install` line for the packages a plugin project lacks. */
export function toolchainMissingMessage(missing: readonly string[]): string {
  const tested: Record<string, string> = { ...testedVersions(), wasmux: readPackage(join(PACKAGE_ROOT, 'package.json')).version };
  const names = missing.length === 1 ? missing[0] : `${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]}`;
  return `wasmux build needs ${names} in this project: npm install --save-dev ${missing.map((m) => `${m}@${tested[m]}`).join(' ')}`;
}

/**
 * Loads asc and jco from the project's node_modules (as Node resolves from
 * there), or says what to install; warns when a version is not the tested one.
 */
async function loadToolchain(projectDir: string, needWasmux: boolean, warn: (line: string) => void): Promise<Toolchain> {
  const fromProject = createRequire(join(projectDir, 'package.json'));
  // Where Node would look for the package from the project (its package.json
  // need not be exported, so it is looked for, not resolved).
  const packageFile = (name: string): string | null =>
    (fromProject.resolve.paths(name) ?? []).map((dir) => join(dir, name, 'package.json')).find((f) => existsSync(f)) ?? null;
  const needed = ['assemblyscript', '@bytecodealliance/jco', ...(needWasmux ? ['wasmux'] : [])];
  const found = new Map(needed.map((name) => [name, packageFile(name)]));
  const missing = needed.filter((name) => found.get(name) === null);
  if (missing.length > 0) throw new WasmuxError('WASMUX_ERR_TOOLCHAIN', toolchainMissingMessage(missing));
  const ascPackage = found.get('assemblyscript')!;
  const jcoPackage = found.get('@bytecodealliance/jco')!;
  const wasmuxPackage = found.get('wasmux') ?? null;
  const tested = testedVersions();
  for (const [name, file] of [
    ['assemblyscript', ascPackage],
    ['@bytecodealliance/jco', jcoPackage],
  ] as const) {
    const version = readPackage(file).version;
    if (version !== tested[name])
      warn(`wasmux build: warning: ${name} ${version} is installed here; wasmux is tested with ${tested[name]}`);
  }
  // asc's entry is exported for import only; its package.json says where it is.
  const ascFile = join(dirname(ascPackage), (readPackage(ascPackage).exports!['./asc'] as { import: string }).import);
  const jcoFile = createRequire(jcoPackage).resolve('@bytecodealliance/jco');
  // The preview2-shim instance jco's wasm-tools reads WIT through: the one
  // its own package resolves (jco 1.35 runs wasm-tools from
  // @bytecodealliance/jco-transpile, and npm may give each its own copy).
  let wasmToolsFile = jcoFile;
  try {
    wasmToolsFile = createRequire(jcoFile).resolve('@bytecodealliance/jco-transpile/wasm-tools');
  } catch {
    // an older jco: wasm-tools is its own
  }
  const shimFile = createRequire(wasmToolsFile).resolve('@bytecodealliance/preview2-shim/filesystem');
  const asc = (await import(pathToFileURL(ascFile).href)).default as AscApi;
  const jco = (await import(pathToFileURL(jcoFile).href)) as JcoApi;
  const shim = await import(pathToFileURL(shimFile).href);
  return { asc, jco, setPreopens: shim._setPreopens, wasmuxRoot: wasmuxPackage === null ? null : realpathSync(dirname(wasmuxPackage)) };
}

/**
 * What the runtime needs from the compile, and why. A user setting with
 * another value is refused: build would otherwise override it silently.
 */
interface Required {
  key: string;
  value: string | boolean;
  why: string;
}
function requiredOptions(target: string, abortHook: string): Required[] {
  const req: Required[] = [
    { key: 'runtime', value: 'incremental', why: 'long-running plugins allocate per connection' },
    { key: 'exportStart', value: '_initialize', why: 'top-level code calls imports; the host runs it after instantiation' },
    { key: 'use', value: `abort=${abortHook}`, why: 'a component cannot satisfy an env.abort import' },
    { key: 'noExportMemory', value: false, why: "the canonical ABI reads the plugin's exported memory" },
    { key: 'importMemory', value: false, why: 'the world gives a plugin no memory to import' },
    { key: 'importTable', value: false, why: 'the world gives a plugin no table to import' },
    { key: 'exportRuntime', value: false, why: "the world's exports are run and cabi_realloc only" },
    { key: 'exportTable', value: false, why: "the world's exports are run and cabi_realloc only" },
  ];
  // The debug target is the one whose traps name guest functions.
  if (target === 'debug') req.push({ key: 'debug', value: true, why: 'the debug target keeps the name section' });
  return req;
}

/** The flags that apply the required options (asc: command-line arguments take precedence over the file). */
function requiredFlags(required: Required[]): string[] {
  const flags: string[] = [];
  for (const r of required) {
    if (r.value === true) flags.push(`--${r.key}`);
    else if (typeof r.value === 'string') flags.push(`--${r.key}`, r.value);
    // false is asc's default: no flag sets it, and the check below refuses true.
  }
  return flags;
}

type AsconfigFile = { options?: Record<string, unknown>; targets?: Record<string, Record<string, unknown>>; extends?: string };

/** Where in asconfig.json a setting comes from, for the refusal's message. */
function keyName(file: AsconfigFile, target: string, key: string): string {
  if (file.targets?.[target] && key in file.targets[target]!) return `targets.${target}.${key}`;
  if (file.options && key in file.options) return `options.${key}`;
  return file.extends ? `${key} (from "extends": "${file.extends}")` : key;
}

function conflicts(options: Record<string, unknown>, required: Required[]): { r: Required; value: unknown } | null {
  for (const r of required) {
    const value = options[r.key];
    if (value === undefined) continue;
    if (r.key === 'use') {
      // `use` is a list of aliases; only another abort conflicts.
      const abort = (value as string[]).find((u) => u.trim().startsWith('abort=') && u.trim() !== r.value);
      if (abort !== undefined) return { r, value: abort };
    } else if (value !== r.value) {
      return { r, value };
    }
  }
  return null;
}

/** asc's view of asconfig.json for a target (its own merge of target, options and extends). */
async function resolvedConfig(
  asc: AscApi,
  args: string[],
  configName: string,
): Promise<{ options: Record<string, unknown>; entries: string[] }> {
  const out: string[] = [];
  const sink = { write: (s: string) => (out.push(String(s)), true) };
  const { error } = await asc.main([...args, '--showConfig'], { stdout: sink, stderr: sink });
  const text = out.join('');
  if (error) throw new WasmuxError('WASMUX_ERR_BUILD', `${configName}: ${error.message}`);
  try {
    return JSON.parse(text);
  } catch {
    // With no entry at all asc prints its help instead of the configuration.
    throw new WasmuxError('WASMUX_ERR_BUILD', `${configName} lists no entries (its "entries" names the plugin's index.ts)`);
  }
}

/** `file:line:column: ` of a diagnostic in one of the project's sources, else nothing. */
function location(projectDir: string, d: AscDiagnostic): string {
  const path = d.range?.source?.normalizedPath;
  if (!path || path.startsWith('~lib/')) return '';
  let text: string;
  try {
    text = readFileSync(resolve(projectDir, path), 'utf8');
  } catch {
    return `${path}: `;
  }
  const before = text.slice(0, d.range!.start);
  const line = before.split('\n').length;
  return `${path}:${line}:${before.length - before.lastIndexOf('\n')}: `;
}

export async function buildPlugin(req: BuildRequest): Promise<BuiltPlugin> {
  const projectDir = resolve(req.projectDir);
  const configName = req.config ?? 'asconfig.json';
  const configPath = resolve(projectDir, configName);
  if (!existsSync(configPath))
    throw new WasmuxError(
      'WASMUX_ERR_BUILD',
      `no ${configName} in ${projectDir} (AssemblyScript's project file: "entries", "options", "targets")`,
    );
  let file: AsconfigFile;
  try {
    file = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_BUILD', `${configName} is not valid JSON: ${(e as Error).message}`);
  }
  const tools = await loadToolchain(projectDir, req.sdkDir === undefined, (line) => req.diagnostics.write(`${line}\n`));

  // asc names a source by its path relative to baseDir without the
  // extension, and a package's files ~lib/<package>/<path in the package>.
  const abortFile =
    req.sdkDir !== undefined ? relative(projectDir, join(req.sdkDir, 'abort')).split(sep).join('/') : '~lib/wasmux/assembly/sdk/abort';
  const abortHook = `${abortFile}/abort`;
  const required = requiredOptions(req.target, abortHook);
  const base = [...(req.entry ? [req.entry] : []), '--baseDir', projectDir, '--config', configName, '--target', req.target];

  const config = await resolvedConfig(tools.asc, base, configName);
  const conflict = conflicts(config.options, required);
  if (conflict) {
    throw new WasmuxError(
      'WASMUX_ERR_BUILD',
      `${configName}: ${keyName(file, req.target, conflict.r.key)} is ${JSON.stringify(conflict.value)}; ` +
        `wasmux needs ${JSON.stringify(conflict.r.value)} (${conflict.r.why})`,
    );
  }

  const outputs = new Map<string, Uint8Array | string>();
  const errors: AscDiagnostic[] = [];
  // Colours only for a terminal: asc would also colour into a pipe when CI is set.
  const colours = req.diagnostics.isTTY === true ? [] : ['--noColors'];
  const { error } = await tools.asc.main([...base, '--outFile', CORE_OUT, ...requiredFlags(required), ...colours], {
    stdout: { write: () => true },
    stderr: req.diagnostics,
    writeFile: (name, contents) => void outputs.set(name, contents),
    reportDiagnostic: (d) => void (d.category === ASC_ERROR && errors.push(d)),
  });
  const core = outputs.get(CORE_OUT);
  if (error || !(core instanceof Uint8Array)) {
    // asc's own report says file(line,column); editors and CI annotations read file:line:column.
    for (const d of errors)
      req.diagnostics.write(`${location(projectDir, d)}error ${d.code < 1000 ? 'AS' : 'TS'}${d.code}: ${d.message}\n`);
    // asc cannot find the abort it was pointed at: the SDK's entry is not compiled in.
    const entry = req.sdkDir === undefined ? '"wasmux/entry"' : `the SDK's entry (${abortFile.replace(/abort$/, 'entry')}.ts)`;
    const hint = errors.some((d) => d.message.includes(abortHook))
      ? ` (the plugin's index.ts must \`export * from ${entry}\`, which brings the SDK's abort)`
      : '';
    throw new WasmuxError('WASMUX_ERR_BUILD', `asc failed: ${error ? error.message : 'it wrote no module'}${hint}`);
  }

  // The world the SDK was written for: the WIT of the package the sources compiled against.
  const wit = req.wit ?? { path: join(tools.wasmuxRoot ?? PACKAGE_ROOT, 'wit'), world: PLUGIN_WORLD };
  // jco's wasm-tools reads WIT through WASI. It takes its preopens once, at
  // its first call, and the next build may read another WIT package (a test
  // plugin's own): give it the file system's root. It is the build's own
  // tool, not a guest.
  const fsRoot = parse(wit.path).root;
  tools.setPreopens({ [fsRoot]: fsRoot });
  const embedded = await tools.jco.componentEmbed({ binary: core, witPath: wit.path, world: wit.world, stringEncoding: 'utf8' });
  const bytes = await tools.jco.componentNew(embedded);
  if (req.check ?? true) await compilePlugin(bytes, 'plugin');
  const outFile = typeof config.options['outFile'] === 'string' ? config.options['outFile'] : null;
  return {
    bytes,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    outFile: outFile === null ? null : isAbsolute(outFile) ? outFile : resolve(projectDir, outFile),
  };
}
