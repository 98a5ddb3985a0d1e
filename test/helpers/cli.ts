/** Running the built `wasmux` command as a child process, as a user would. */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../dist/host/cli/main.js', import.meta.url));

export interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `wasmux ...args` to completion (killed after `timeoutMs`), in `cwd` [the repository]. */
export function wasmux(args: string[], timeoutMs = 20_000, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface Running {
  child: ChildProcess;
  port: number;
  output: () => { stdout: string; stderr: string };
  /** Sends `signal` and resolves with how the process ended and how long that took. */
  stop(signal?: NodeJS.Signals): Promise<Finished & { ms: number }>;
}

/**
 * Starts `wasmux run ...args` and resolves once it prints its listening line.
 * `cli`: another wasmux's main.js (an installed package) [this repository's]; `cwd` [the repository].
 */
export function startRun(args: string[], timeoutMs = 15_000, options: { cli?: string; cwd?: string } = {}): Promise<Running> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.cli ?? CLI, 'run', ...args], {
      cwd: options.cwd ?? ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const closed = new Promise<Finished>((r) => child.on('close', (code, signal) => r({ code, signal, stdout, stderr })));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listening line within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stderr!.on('data', (d) => (stderr += d));
    child.stdout!.on('data', (d) => {
      stdout += d;
      const m = /listening on [^\s,]*:(\d+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({
          child,
          port: Number(m[1]),
          output: () => ({ stdout, stderr }),
          async stop(signal: NodeJS.Signals = 'SIGTERM') {
            const t = performance.now();
            child.kill(signal);
            const f = await closed;
            return { ...f, ms: performance.now() - t };
          },
        });
      }
    });
    void closed.then((f) => {
      clearTimeout(timer);
      reject(new Error(`wasmux run exited (${f.code ?? f.signal}) before listening; stderr: ${f.stderr}`));
    });
  });
}

/** Connects to 127.0.0.1:port, writes `text`, half-closes, and resolves with everything read until the server ends. */
/** The admin endpoint's base URL (`http://host:port`) from `wasmux run --admin`'s start line. */
export function adminUrl(r: Running): string {
  const m = /admin endpoint on (http:\/\/\S+)/.exec(r.output().stdout);
  if (!m) throw new Error(`no admin line in: ${r.output().stdout}`);
  return m[1]!;
}

export function echoOnce(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(text));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (got += d));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}
