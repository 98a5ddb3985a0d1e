/**
 * Recording with `wasmux run --record` and replaying with `wasmux replay`,
 * both as the real CLI (helpers/cli.ts), into a temporary directory that
 * `cleanUp()` removes; every server started here is stopped by its own
 * handle (SIGTERM, then what stop() does).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Running, startRun, wasmux } from './cli.js';

/** Recording is tested on epoll (Linux); elsewhere the tests say why they skip. */
export const noEpoll = process.platform === 'linux' ? null : 'the recorded runs use the epoll backend (Linux only)';

const dirs: string[] = [];
const running: Running[] = [];

/** A fresh directory for traces. */
export function traceDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'wasmux-trace-'));
  dirs.push(d);
  return d;
}

/** `wasmux run <plugin> --listen 127.0.0.1:0 --backend epoll --record <file> ...extra`, once it listens. */
export async function record(plugin: string, file: string, extra: string[] = []): Promise<Running> {
  const r = await startRun([plugin, '--listen', '127.0.0.1:0', ...extra, '--backend', 'epoll', '--record', file]);
  running.push(r);
  return r;
}

/** The log lines a run printed for instance lines of `name` (the lines a replay reproduces). */
export function instanceLines(stderr: string, name: string, instance = 0): string[] {
  const prefix = `${name}[${instance}]`;
  return stderr.split('\n').filter((l) => l.startsWith(`${prefix} `) && /^\S+ (guest )?(trace|debug|info|warn|error): /.test(l));
}

export interface ReplayJson {
  header: { plugin: { name: string; sha256: string; path: string | null }; instance: number; incarnation: number; listen: string[] };
  lines: { level: string; origin: string; message: string }[];
  connections: { handle: number; how: string; peer: string; sent: string; received: number; closed: boolean }[];
  calls: number;
  end: { reason: string; message: string | null };
  recorded: { reason: string; message: string | null } | null;
  diverged: { call: number; message: string } | null;
}

/** `wasmux replay <file> ...args --json`: its status and parsed transcript. */
export async function replayJson(file: string, args: string[] = []): Promise<{ code: number | null; json: ReplayJson; stderr: string }> {
  const r = await wasmux(['replay', file, ...args, '--json'], 60_000);
  if (r.stdout === '') throw new Error(`wasmux replay printed nothing (status ${r.code}): ${r.stderr}`);
  return { code: r.code, json: JSON.parse(r.stdout) as ReplayJson, stderr: r.stderr };
}

/** What a replayed connection's guest sent. */
export function sentBytes(c: { sent: string }): Buffer {
  return Buffer.from(c.sent, 'base64');
}

/** Stops what is still running and removes the trace directories. */
export async function cleanUp(): Promise<void> {
  await Promise.all(running.splice(0).map((r) => (r.child.exitCode === null && r.child.signalCode === null ? r.stop('SIGKILL') : null)));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}
