// The machinery every benchmark runner shares: the command line, child
// processes (started, watched, stopped, and killed on Ctrl-C), servers that
// announce "listening on HOST:PORT", load generators that mark their measured
// window on stdout, and CPU time read from /proc. What a benchmark measures and
// how it reports it stays in its own script.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bench', 'bin');
export const OUT = path.join(ROOT, 'bench', 'out');
export const READY_TIMEOUT_MS = 15000;
export const STOP_TIMEOUT_MS = 5000;

// ---------------------------------------------------------------------------
// Command line

// `fail` prints "bench/<name>: message" and exits 2; `flags` parses the options
// (an unknown or malformed one fails with the usage, --help prints it and exits 0);
// `list` splits a comma-separated option, failing when it names nothing.
export function cli(name, usage) {
  const fail = (message) => {
    console.error(`bench/${name}: ${message}`);
    process.exit(2);
  };
  const flags = (options) => {
    let values;
    try {
      ({ values } = parseArgs({ options }));
    } catch (err) {
      fail(`${err.message}\n\n${usage}`);
    }
    if (values.help) {
      console.log(usage);
      process.exit(0);
    }
    return values;
  };
  const list = (text, what, parseItem) => {
    const items = text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (items.length === 0) fail(`${what} is empty`);
    return items.map(parseItem);
  };
  return { fail, flags, list };
}

export function shellQuote(arg) {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

// This run's command line, quoted so that it can be pasted back into a shell.
export const commandLine = () => [process.argv0, ...process.argv.slice(1)].map(shellQuote).join(' ');

export const kernelRelease = () => execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();

// The unit of the CPU times in /proc/<pid>/stat.
export const clockTicksPerSecond = () => Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

export function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

// Builds bench/bin/<name> from bench/c/<name>.c unless the binary is newer than
// the source; returns the binary's path. `fail` gets the message when cc fails.
export function compileIfStale(name, fail) {
  const src = path.join(ROOT, 'bench', 'c', `${name}.c`);
  const bin = path.join(BIN, name);
  if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= fs.statSync(src).mtimeMs) return bin;
  fs.mkdirSync(BIN, { recursive: true });
  console.error(`compiling ${path.relative(ROOT, src)} -> ${path.relative(ROOT, bin)}`);
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', bin, src], { stdio: 'inherit' });
  } catch (err) {
    fail(`cc could not build ${path.relative(ROOT, src)}: ${err.message}`);
  }
  return bin;
}

// ---------------------------------------------------------------------------
// Child processes

// Every child is tracked so that an interrupted run kills exactly what it started.
const children = new Set();

export function killChildren() {
  for (const proc of children) proc.kill('SIGKILL');
}

// Ctrl-C (or SIGTERM) mid-run must not leave a server or load generator behind:
// `cleanup` (by default killChildren) runs, then the runner exits 130.
export function onInterrupt(cleanup = killChildren) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      cleanup();
      process.exit(130);
    });
  }
}

// Starts argv[0] in ROOT with its stdout and stderr read line by line into
// onLine(line, stream). Reading also keeps the pipes drained, so a chatty child
// never blocks. `exited` settles once, for a normal exit and for a spawn failure
// alike; `stderrTail` holds the last 20 lines of stderr.
export function launch(argv, onLine = () => {}) {
  const proc = spawn(argv[0], argv.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const exited = new Promise((resolve) => {
    proc.on('exit', (code, signal) => resolve({ code, signal }));
    proc.on('error', (error) => resolve({ code: null, signal: null, error }));
  }).finally(() => children.delete(proc));
  const stderrTail = [];
  readline.createInterface({ input: proc.stdout }).on('line', (line) => onLine(line, 'stdout'));
  readline.createInterface({ input: proc.stderr }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > 20) stderrTail.shift();
    onLine(line, 'stderr');
  });
  return { proc, exited, stderrTail };
}

// `what`, followed by the child's last lines of stderr, if any.
export function explain(what, child) {
  return child.stderrTail.length ? `${what}\n  ${child.stderrTail.join('\n  ')}` : what;
}

export function describeExit({ code, signal, error }) {
  if (error) return error.message;
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

// `promise`, or after `ms` whatever onTimeout() returns.
export function withTimeout(promise, ms, onTimeout) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------
// Servers

const LISTENING = /listening on (\d+\.\d+\.\d+\.\d+):(\d+)/;

// Launches a server that announces itself with a line matching `pattern` (on
// either stream: wasmux may use stderr) and waits up to READY_TIMEOUT_MS for it.
// Resolves to { server, match } once announced, { server, exit } if it exited
// first, or { server, timedOut: true }; the caller decides what a failure means.
export async function launchAnnounced(argv, pattern = LISTENING) {
  let announce;
  const listening = new Promise((resolve) => {
    announce = resolve;
  });
  const server = launch(argv, (line) => {
    const m = pattern.exec(line);
    if (m) announce(m);
  });
  const outcome = await withTimeout(
    Promise.race([listening.then((match) => ({ match })), server.exited.then((exit) => ({ exit }))]),
    READY_TIMEOUT_MS,
    () => ({ timedOut: true }),
  );
  return { server, ...outcome };
}

// A server that prints "listening on HOST:PORT": the child with its port, or an
// error naming `name` (a server that never announced itself is stopped first).
export async function startAnnounced(name, argv) {
  const { server, match, exit } = await launchAnnounced(argv);
  if (match) return { ...server, port: Number(match[2]) };
  await stopServer(server);
  const why = exit ? `exited before listening (${describeExit(exit)})` : `no 'listening on' line within ${READY_TIMEOUT_MS} ms`;
  throw new Error(explain(`${name}: ${why}`, server));
}

// SIGTERM, then SIGKILL if it is still running STOP_TIMEOUT_MS later; then
// server.cleanup(), if set. Resolves to the exit described (`exit`), as it came
// (`status`), and whether SIGKILL was needed (`sigkill`).
export async function stopServer(server) {
  const { proc } = server;
  let sigkill = false;
  if (proc.exitCode === null && proc.signalCode === null && proc.pid) {
    proc.kill('SIGTERM');
    await withTimeout(server.exited, STOP_TIMEOUT_MS, () => {
      sigkill = true;
      proc.kill('SIGKILL');
      return server.exited;
    });
  }
  server.cleanup?.();
  const status = await server.exited;
  return { exit: describeExit(status), status, sigkill };
}

// A loopback port nothing listens on (for servers that cannot pick their own).
export async function freePort(host) {
  const s = net.createServer();
  await new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, host, resolve);
  });
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return port;
}

// ---------------------------------------------------------------------------
// Measuring

// [utime, stime] of the whole process (all threads), in clock ticks. Fields are
// counted after the ')' that closes the command name, which may contain spaces.
export function cpuSplit(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]), Number(fields[12])];
}

// utime + stime of the whole process (all threads), in clock ticks.
export function cpuTicks(pid) {
  const [user, sys] = cpuSplit(pid);
  return user + sys;
}

// Runs a load generator that prints "measure-start" on stdout when its measured
// window opens and its report as one JSON line when the window closes.
// sample(child) is taken in the line handler itself at both, so the only skew is
// the pipe's latency; an error there (e.g. a dead server's /proc entry is gone)
// is kept as `lineError`. After `timeoutMs` the generator is killed and its exit
// reads `timeoutSignal`.
export async function runMeasured(argv, sample, timeoutMs, timeoutSignal = 'SIGKILL (runner timeout)') {
  let start, end, report, lineError;
  const child = launch(argv, (line, stream) => {
    if (stream !== 'stdout') return;
    try {
      if (line === 'measure-start') start = sample(child);
      else if (line.startsWith('{')) {
        end = sample(child);
        report = JSON.parse(line);
      }
    } catch (err) {
      lineError ??= err;
    }
  });
  const exit = await withTimeout(child.exited, timeoutMs, () => {
    child.proc.kill('SIGKILL');
    return child.exited.then(() => ({ code: null, signal: timeoutSignal }));
  });
  return { child, exit, start, end, report, lineError };
}
