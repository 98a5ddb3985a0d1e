/**
 * buildPlugin in a worker thread (host/build/build-worker.ts): what
 * `wasmux dev` builds with. The diagnostics come back as asc writes them,
 * in order; a build can be cancelled (its thread terminated).
 */
import { Worker } from 'node:worker_threads';
import { WasmuxError, type WasmuxErrorCode } from '../errors.js';
import type { BuiltPlugin } from './plugin-build.js';

const WORKER_URL = new URL('./build-worker.js', import.meta.url);

export interface BuildThreadInput {
  readonly projectDir: string;
  readonly target: string;
  readonly config?: string;
  /** Whether the diagnostics go to a terminal (asc colours them then). */
  readonly isTTY: boolean;
}

export type BuildThreadMessage =
  | { kind: 'diagnostics'; text: string }
  | { kind: 'built'; bytes: Uint8Array; sha256: string; outFile: string | null }
  | { kind: 'failed'; code: WasmuxErrorCode; message: string }
  | { kind: 'crashed'; message: string };

export interface BuildRun {
  /** The plugin built; rejects with the build's WasmuxError (WASMUX_ERR_BUILD, WASMUX_ERR_TOOLCHAIN...), or an Error if the thread died. */
  readonly result: Promise<BuiltPlugin>;
  /** Ends the build now (its thread terminated); `result` then rejects. */
  cancel(): Promise<void>;
}

/** Starts building; `diagnostics` gets asc's output (and toolchain warnings) as they come. */
export function buildInThread(input: BuildThreadInput, diagnostics: (text: string) => void): BuildRun {
  const worker = new Worker(WORKER_URL, { workerData: input, stdout: false, stderr: false });
  const result = new Promise<BuiltPlugin>((resolve, reject) => {
    let crash: string | null = null;
    worker.on('message', (m: BuildThreadMessage) => {
      if (m.kind === 'diagnostics') return diagnostics(m.text);
      // The outcome is the thread's last message: it is ended at once (a
      // toolchain that left a handle open cannot keep it alive).
      void worker.terminate();
      if (m.kind === 'built') resolve({ bytes: m.bytes, sha256: m.sha256, outFile: m.outFile });
      else if (m.kind === 'failed') reject(new WasmuxError(m.code, m.message));
      else crash = m.message;
    });
    worker.on('error', (e) => {
      crash ??= e.stack ?? e.message;
    });
    // Settles what the messages did not (a promise settles once).
    worker.once('exit', (code) =>
      reject(new Error(crash !== null ? `the build thread failed: ${crash}` : `the build ended before it finished (exit code ${code})`)),
    );
  });
  result.catch(() => {}); // observed by the caller
  return {
    result,
    async cancel() {
      await worker.terminate();
    },
  };
}
