/**
 * Every I/O backend a suite can run here, and `wasmux run` started as a
 * separate process on one of them: natively (epoll, poll, and kqueue through
 * a kqueue library on Linux) or under wine (iocp, see ./wine.ts).
 *
 * kqueue on Linux: the library in WASMUX_KQUEUE_LIBRARY if the caller set
 * one (libkqueue), otherwise the repository's stand-in
 * (test/stand-ins/kqueue/), handed to the server's environment only: this
 * process's own environment is left as it is.
 *
 * The child's stdout and stderr go to files, not pipes (node.exe under wine
 * cannot write to a Unix pipe), read back as they grow. Every process started
 * here is tracked; `stopAll()` in an afterAll ends whatever a failed test
 * left running.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { BACKEND_NAMES } from '../../dist/host/index.js';
import { ROOT } from './cli.js';
import { wineNode } from './wine.js';
import { QUIRKS_ENV, kqueueStandIn, type KeventLayout } from '../stand-ins/kqueue/build.js';

/** The CLI, relative to ROOT (the children's working directory), so the same path works under wine. */
const CLI = 'dist/host/cli/main.js';

export interface SpawnSpec {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
}

export interface BackendTarget {
  /** The backend's name (`--backend`). */
  name: string;
  /** What runs it, for titles: the name, and for kqueue on Linux which library. */
  label: string;
  /** null when the backend runs here; otherwise why not (shown in the skipped test's title). */
  skipReason: string | null;
  /** How to start the wasmux CLI with `cliArgs` (everything after the script) for this backend. */
  spawnArgs(cliArgs: string[]): SpawnSpec;
  /** The signal that stops the server gracefully (under wine SIGTERM kills at once; SIGINT arrives as Ctrl-C). */
  stopSignal: NodeJS.Signals;
  /** How long a server may take to print its start line (a cold wine start takes seconds). */
  startTimeoutMs: number;
  /**
   * Whether the server's /proc/<pid>/fd lists its sockets, so that counting
   * them checks accepts and closes. Not under wine: wineserver holds them.
   */
  socketFds: boolean;
}

function built(name: string): string | null {
  return (BACKEND_NAMES as readonly string[]).includes(name) ? null : `the ${name} backend is not in this build of the host yet`;
}

function native(name: string, osReason: string | null, env?: NodeJS.ProcessEnv, label = name): BackendTarget {
  return {
    name,
    label,
    skipReason: osReason ?? built(name),
    spawnArgs: (cliArgs) => ({ command: process.execPath, args: [CLI, ...cliArgs], env: env && { ...process.env, ...env } }),
    stopSignal: 'SIGTERM',
    startTimeoutMs: 15_000,
    socketFds: process.platform === 'linux',
  };
}

/** Every backend, in a fixed order; those that cannot run here carry their reason. */
export function backendTargets(): BackendTarget[] {
  const linux = process.platform === 'linux';
  const bsd = process.platform === 'darwin' || process.platform === 'freebsd';
  const targets = [
    native('epoll', linux ? null : `epoll exists only on Linux (this is ${process.platform})`),
    native('poll', linux ? null : `the poll(2) backend is built for Linux's libc only (this is ${process.platform})`),
    bsd || process.env.WASMUX_KQUEUE_LIBRARY
      ? native('kqueue', null, undefined, bsd ? 'kqueue' : `kqueue (${process.env.WASMUX_KQUEUE_LIBRARY})`)
      : kqueueStandInTarget(64, 'bsd', 'no kqueue here (macOS/FreeBSD, or WASMUX_KQUEUE_LIBRARY=/path/to/libkqueue.so) and no stand-in: '),
  ];
  if (process.platform === 'win32') {
    targets.push(native('iocp', null));
  } else {
    const wine = wineNode();
    const underWine = { name: 'iocp', label: 'iocp', stopSignal: 'SIGINT', startTimeoutMs: 60_000, socketFds: false } as const;
    targets.push(
      'skip' in wine
        ? {
            ...underWine,
            skipReason: wine.skip,
            spawnArgs: () => {
              throw new Error(wine.skip);
            },
          }
        : {
            ...underWine,
            skipReason: built('iocp'),
            spawnArgs: (cliArgs) => ({ command: wine.command, args: [...wine.args, CLI, ...cliArgs], env: wine.env }),
          },
    );
  }
  return targets;
}

/**
 * kqueue on the repository's stand-in (Linux), with the struct kevent
 * layout given, in BSD mode or in libkqueue mode (two behaviours of
 * libkqueue 2.7.0 that BSD does not have: see test/stand-ins/kqueue/kqueue.c).
 * The layout is not told to the host: its probe must find it.
 */
export function kqueueStandInTarget(layout: KeventLayout, quirks: 'bsd' | 'libkqueue', skipPrefix = ''): BackendTarget {
  const label = `kqueue (stand-in, ${layout}-byte kevent${quirks === 'libkqueue' ? ', libkqueue mode' : ''})`;
  const standIn = kqueueStandIn();
  if ('skip' in standIn) return native('kqueue', skipPrefix + standIn.skip, undefined, label);
  return native(
    'kqueue',
    null,
    { WASMUX_KQUEUE_LIBRARY: standIn.libraries[layout], [QUIRKS_ENV]: quirks === 'libkqueue' ? 'libkqueue' : '' },
    label,
  );
}

// A file the child writes, read back incrementally.
class Output {
  private readonly fd: number;
  private readonly decoder = new StringDecoder('utf8');
  private offset = 0;
  private textSoFar = '';
  private closed = false;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
  }

  text(): string {
    if (this.closed) return this.textSoFar;
    const buf = Buffer.allocUnsafe(64 * 1024);
    for (;;) {
      const n = readSync(this.fd, buf, 0, buf.length, this.offset);
      if (n <= 0) break;
      this.offset += n;
      this.textSoFar += this.decoder.write(buf.subarray(0, n));
    }
    return this.textSoFar;
  }

  /** Keeps the text read so far; later calls of text() return it. */
  close(): void {
    this.text();
    this.closed = true;
    closeSync(this.fd);
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WasmuxProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The port of the first `--listen` address (from the start line); 0 until known. */
  port: number;
  stdout(): string;
  stderr(): string;
  /** The plugin's own log lines (`name[instance] guest level: message`), in order. */
  pluginLines(): string[];
  /** Resolves with the first match of `re` in `stream`; rejects on exit or after `timeoutMs`. */
  waitFor(re: RegExp, stream?: 'stdout' | 'stderr', timeoutMs?: number): Promise<RegExpExecArray>;
  readonly exited: Promise<Exit>;
  /** Sends `signal`, waits for the exit (SIGKILL after `timeoutMs`), and says how long it took. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit & { ms: number }>;
  /** CPU time (user + system) of the process and its descendants, in ms (clock-tick resolution). */
  cpuMs(): number;
  /** Open descriptors of the process. */
  fdCount(): number;
}

const running = new Set<WasmuxProcess>();
let clockTicks = 0;

// utime + stime of one process, in clock ticks (fields after the ')' that ends the command name).
function ticksOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

// The process and its descendants (wine runs node.exe below the process we start).
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const t of tasks) {
      try {
        for (const c of readFileSync(`/proc/${out[i]}/task/${t}/children`, 'utf8').split(' ')) if (c.trim()) out.push(Number(c));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return out;
}

/** Starts the wasmux CLI with `cliArgs` on `target`. */
export function startWasmux(target: BackendTarget, cliArgs: string[]): WasmuxProcess {
  const spec = target.spawnArgs(cliArgs);
  const dir = mkdtempSync(join(tmpdir(), `wasmux-${target.name}-`));
  const outPath = join(dir, 'stdout');
  const errPath = join(dir, 'stderr');
  const outW = openSync(outPath, 'w');
  const errW = openSync(errPath, 'w');
  const child = spawn(spec.command, spec.args, { cwd: ROOT, env: spec.env ?? process.env, stdio: ['ignore', outW, errW] });
  closeSync(outW);
  closeSync(errW);
  const out = new Output(outPath);
  const err = new Output(errPath);
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: null, signal: null }));
  });

  const proc: WasmuxProcess = {
    child,
    pid: child.pid ?? -1,
    port: 0,
    stdout: () => out.text(),
    stderr: () => err.text(),
    pluginLines: () =>
      err
        .text()
        .split('\n')
        .filter((l) => /^[\w.-]+\[\d+\] guest (trace|debug|info|warn|error): /.test(l)),
    async waitFor(re, stream = 'stderr', timeoutMs = 10_000) {
      const deadline = performance.now() + timeoutMs;
      let gone = false;
      void exited.then(() => (gone = true));
      for (;;) {
        const m = re.exec(stream === 'stdout' ? out.text() : err.text());
        if (m) return m;
        if (gone) throw new Error(`wasmux exited before printing ${re}; stderr:\n${err.text()}`);
        if (performance.now() > deadline) throw new Error(`no ${re} on ${stream} within ${timeoutMs} ms; stderr:\n${err.text()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 5_000) {
      const t = performance.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((r) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          r();
        }, timeoutMs);
      });
      await Promise.race([exited, killed]);
      const exit = await exited;
      clearTimeout(timer);
      return { ...exit, ms: performance.now() - t };
    },
    cpuMs() {
      clockTicks ||= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
      let ticks = 0;
      for (const pid of tree(proc.pid)) {
        try {
          ticks += ticksOf(pid);
        } catch {
          // ended meanwhile
        }
      }
      return (ticks * 1000) / clockTicks;
    },
    fdCount: () => readdirSync(`/proc/${proc.pid}/fd`).length,
  };
  running.add(proc);
  void exited.then(() => {
    // Keep what it wrote, then let the files go.
    out.close();
    err.close();
    rmSync(dir, { recursive: true, force: true });
    running.delete(proc);
  });
  return proc;
}

/**
 * Starts `wasmux run <plugin> --backend <target> --listen 127.0.0.1:0 ...extra`
 * and resolves once it prints its start line (with the port filled in).
 */
export async function startServer(
  target: BackendTarget,
  plugin: string,
  extra: string[] = [],
  timeoutMs = target.startTimeoutMs,
): Promise<WasmuxProcess> {
  const proc = startWasmux(target, ['run', plugin, '--backend', target.name, '--listen', '127.0.0.1:0', ...extra]);
  try {
    const m = await proc.waitFor(/listening on [^\s,]*:(\d+) \(backend (\w+)/, 'stdout', timeoutMs);
    if (m[2] !== target.name) throw new Error(`started on backend ${m[2]}, not ${target.name}`);
    proc.port = Number(m[1]);
  } catch (e) {
    await proc.stop('SIGKILL');
    throw e;
  }
  return proc;
}

/** SIGKILLs every process started here that is still running (for afterAll). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop('SIGKILL')));
}
