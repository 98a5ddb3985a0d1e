/**
 * `wasmux dev` tests: a plugin project of its own (the line template, as
 * `wasmux new` writes it) whose node_modules links this repository and its
 * toolchain (as test/build-command.test.ts does), and the command run on it
 * as a child process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT } from './cli.js';

/** A line-protocol project (templates/line) named `name` in a new temporary directory; `remove()` when done. */
export async function lineProject(name = 'devplug'): Promise<{ dir: string; index: string; remove(): Promise<void> }> {
  const parent = await mkdtemp(join(tmpdir(), 'wasmux-dev-'));
  const dir = join(parent, name);
  const fill = (t: string) => t.replaceAll('{{name}}', name).replaceAll('{{port}}', '7000');
  await mkdir(join(dir, 'assembly'), { recursive: true });
  await writeFile(join(dir, 'asconfig.json'), fill(await readFile(join(ROOT, 'templates/common/asconfig.json'), 'utf8')));
  const index = join(dir, 'assembly/index.ts');
  await writeFile(index, fill(await readFile(join(ROOT, 'templates/line/assembly/index.ts'), 'utf8')));
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name, private: true, scripts: { start: `wasmux run build/${name}.wasm --listen 127.0.0.1:7000` } }, null, 2),
  );
  await mkdir(join(dir, 'node_modules/@bytecodealliance'), { recursive: true });
  await symlink(ROOT, join(dir, 'node_modules/wasmux'));
  await symlink(join(ROOT, 'node_modules/assemblyscript'), join(dir, 'node_modules/assemblyscript'));
  await symlink(join(ROOT, 'node_modules/@bytecodealliance/jco'), join(dir, 'node_modules/@bytecodealliance/jco'));
  return { dir, index, remove: () => rm(parent, { recursive: true, force: true }) };
}

/** Replaces `from` by `to` in `file` the way an editor that saves atomically does: a new file renamed over the old one. */
export async function editFile(file: string, from: string, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  if (!text.includes(from)) throw new Error(`${file} does not contain ${JSON.stringify(from)}`);
  await writeFile(`${file}.tmp~`, text.replace(from, to));
  const { rename } = await import('node:fs/promises');
  await rename(`${file}.tmp~`, file);
}

export interface Dev {
  child: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** dev's own lines (`wasmux dev: ...`) after `from`, not the server's log lines. */
  devLines(from?: number): string[];
  /** Resolves with the match once `re` matches the output after `from` (an offset; default: the whole output), or rejects after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number, from?: number): Promise<RegExpExecArray>;
  /** Sends `signal`; resolves with how the process ended and how long that took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Whether the process has ended. */
  exited(): boolean;
}

/** Starts `wasmux dev ...args` in `cwd` (`cli`: another wasmux's main.js, an installed package's). Call `stop()` (the tests do, in finally). */
export function startDev(args: string[], cwd: string, cli = CLI): Dev {
  const child = spawn(process.execPath, [cli, 'dev', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let ended = false;
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on('close', (code, signal) => {
      ended = true;
      for (const w of waiters) w();
      r({ code, signal });
    }),
  );
  return {
    child,
    output: () => out,
    devLines: (from = 0) =>
      out
        .slice(from)
        .split('\n')
        .filter((l) => l.startsWith('wasmux dev: ')),
    exited: () => ended,
    waitFor(re, timeoutMs = 20_000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out.slice(from));
          if (m) {
            done();
            resolve(m);
          } else if (ended) {
            done();
            reject(new Error(`wasmux dev ended before ${re}; output:\n${out}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${re} within ${timeoutMs} ms; output:\n${out}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const t = performance.now();
      if (!ended) child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const f = await closed;
      clearTimeout(killer);
      return { ...f, ms: performance.now() - t };
    },
  };
}

/** wasmux run's start line: the port, the sha256. */
export const LISTENING = /listening on 127\.0\.0\.1:(\d+) \(backend \w+, 1 worker, sha256 ([0-9a-f]{64})\)\n/;

/** A connection to the line plugin: `ask(line)` sends a command and resolves with its reply line. */
export function lineClient(port: number): Promise<{ ask(line: string): Promise<string>; socket: Socket; close(): void }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    let buffered = '';
    let waiting: { resolve(line: string): void; reject(e: Error): void } | null = null;
    socket.on('data', (d: string) => {
      buffered += d;
      const nl = buffered.indexOf('\n');
      if (nl >= 0 && waiting) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const w = waiting;
        waiting = null;
        w.resolve(line);
      }
    });
    socket.on('close', () => waiting?.reject(new Error('the connection closed before the reply')));
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve({
        socket,
        close: () => socket.destroy(),
        ask: (line) =>
          new Promise<string>((res, rej) => {
            const timer = setTimeout(() => rej(new Error(`no reply to ${line} within 10 s`)), 10_000);
            waiting = {
              resolve: (l) => {
                clearTimeout(timer);
                res(l);
              },
              reject: (e) => {
                clearTimeout(timer);
                rej(e);
              },
            };
            socket.write(`${line}\n`);
          }),
      }),
    );
  });
}

/** One command on a new connection: its reply line. */
export async function askOnce(port: number, line: string): Promise<string> {
  const c = await lineClient(port);
  try {
    return await c.ask(line);
  } finally {
    c.close();
  }
}
