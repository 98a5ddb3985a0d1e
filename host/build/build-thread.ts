/**
 * buildPlugin in a worker thread (host/build/build-worker.ts): what
 * `wasmux dev` builds with. The thread stays up from one build to the next
 * (the toolchain loaded once, its code warm: a rebuild takes a fraction of
 * the first build); `restart()` drops it, so that the next build loads the
 * project's toolchain anew (after package.json changed). The diagnostics
 * come back as asc writes them, in order; a build can be cancelled (the
 * thread terminated).
 */
import { Worker } from 'node:worker_threads';
import { WasmuxError, type WasmuxErrorCode } from '../errors.js';
import type { BuiltPlugin } from './plugin-build.js';

const WORKER_URL = new URL('./build-worker.js', import.meta.url);

export interface BuildThreadInput {
  readonly projectDir: string;
  readonly target: string;
  /** The asconfig file, relative to projectDir. [asconfig.json] */
  readonly config?: string;
  /** Whether the diagnostics go to a terminal (asc colours them then). */
  readonly isTTY: boolean;
}

export interface BuildThreadRequest extends BuildThreadInput {
  readonly id: number;
}

export type BuildThreadMessage = { id: number } & (
  | { kind: 'diagnostics'; text: string }
  | { kind: 'built'; bytes: Uint8Array; sha256: string; outFile: string | null }
  | { kind: 'failed'; code: WasmuxErrorCode; message: string }
  | { kind: 'crashed'; message: string }
);

interface Pending {
  id: number;
  diagnostics: (text: string) => void;
  resolve: (b: BuiltPlugin) => void;
  reject: (e: Error) => void;
}

export class BuildThread {
  private worker: Worker | null = null;
  private pending: Pending | null = null;
  private nextId = 1;
  /** Builds started on a thread that was already up (its toolchain loaded and warm). */
  warmBuilds = 0;

  /**
   * Builds; `diagnostics` gets asc's output (and toolchain warnings) as they
   * come. Resolves with the plugin; rejects with the build's WasmuxError
   * (WASMUX_ERR_BUILD, WASMUX_ERR_TOOLCHAIN...), or an Error if the thread
   * died or the build was cancelled. One build at a time.
   */
  build(input: BuildThreadInput, diagnostics: (text: string) => void): Promise<BuiltPlugin> {
    if (this.pending) return Promise.reject(new Error('a build is already running'));
    if (this.worker) this.warmBuilds++;
    const worker = (this.worker ??= this.spawn());
    const id = this.nextId++;
    return new Promise<BuiltPlugin>((resolve, reject) => {
      this.pending = { id, diagnostics, resolve, reject };
      worker.postMessage({ ...input, id } satisfies BuildThreadRequest);
    });
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_URL, { stdout: false, stderr: false });
    // Between builds it waits for the next request: that is no reason to keep the process alive.
    worker.unref();
    let crash: string | null = null;
    worker.on('message', (m: BuildThreadMessage) => {
      const p = this.pending;
      if (!p || m.id !== p.id) return;
      if (m.kind === 'diagnostics') return p.diagnostics(m.text);
      this.pending = null;
      if (m.kind === 'built') p.resolve({ bytes: m.bytes, sha256: m.sha256, outFile: m.outFile });
      else if (m.kind === 'failed') p.reject(new WasmuxError(m.code, m.message));
      else p.reject(new Error(`the build failed: ${m.message}`));
    });
    worker.on('error', (e) => {
      crash ??= e.stack ?? e.message;
    });
    worker.once('exit', (code) => {
      if (this.worker === worker) this.worker = null;
      const p = this.pending;
      this.pending = null;
      p?.reject(new Error(crash !== null ? `the build thread failed: ${crash}` : `the build thread ended (exit code ${code})`));
    });
    return worker;
  }

  /** Ends the thread (a build in progress rejects); the next build starts a new one. */
  async restart(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }

  /** Cancels the build in progress, if any, and ends the thread. */
  close(): Promise<void> {
    return this.restart();
  }
}
