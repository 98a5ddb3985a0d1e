/**
 * The thread a replay runs in (started by `wasmux replay`, host/cli/replay.ts),
 * with the V8 limits the recorded instance's thread had: the same stack, so
 * a guest's recursion overflows where it did; the same heap, so a guest
 * that exhausted it does again (and the replaying process survives it, as
 * the supervisor did). Posts what replay() found: `exhausted` once the
 * trace's last call has been taken (what was replayed so far: the caller
 * ends a guest that then runs on without calling the host), `done`, or
 * `error` for a trace it could not read.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WasmuxError } from '../errors.js';
import { TraceReader } from './format.js';
import { type ReplayResult, replay } from './replay.js';

export interface ReplayThreadInput {
  bytes: Uint8Array;
  file: string;
  module: WebAssembly.Module;
}

export type ReplayThreadMessage =
  | { type: 'exhausted'; result: ReplayResult }
  | { type: 'done'; result: ReplayResult }
  | { type: 'error'; code: string; message: string };

const input = workerData as ReplayThreadInput;
const post = (m: ReplayThreadMessage) => parentPort!.postMessage(m);

try {
  const reader = new TraceReader(input.bytes, input.file);
  post({ type: 'done', result: replay(reader, input.module, (result) => post({ type: 'exhausted', result })) });
} catch (e) {
  if (!(e instanceof WasmuxError)) throw e;
  post({ type: 'error', code: e.code, message: e.message });
}
