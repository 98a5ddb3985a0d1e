/**
 * Running a scenario under many seeds (`wasmux test`): each seed in a worker
 * thread (seed-worker.ts) with a wall-clock budget, so that a guest that
 * spins forever in a handler fails its seed instead of hanging the run. A
 * failing seed is shrunk: its fault kinds are switched off one at a time,
 * each removal kept while the seed still fails; then the faults that run
 * applied are pinned to their steps and dropped one at a time the same way.
 * The report shows the seed, the faults that remain, the faults applied, the
 * transcript of that smallest failing run and command lines that reproduce
 * it (and the seed as first run).
 */
import { Worker } from 'node:worker_threads';
import { WasmuxError } from '../errors.js';
import type { PolicyInput } from '../sandbox/policy.js';
import { type FaultPlan, formatFaults, kindsOf, parseFaults, pinFaults, withoutKind } from './faults.js';
import type { SeedJob, SeedWorkerInput, SeedWorkerMessage } from './scenario-file.js';
import type { SimResult } from './simulate.js';

/** A seed's wall-clock budget by default. */
export const DEFAULT_SEED_TIMEOUT_MS = 10_000;
/** How long the worker may take to load the plugin and the scenario. */
const START_TIMEOUT_MS = 60_000;

export interface SeedOutcome {
  readonly seed: number;
  readonly faults: string;
  /** null: the seed passed. */
  readonly failure: string | null;
  /** The run's result; null when the seed ran out of wall-clock time (nothing of it survives the thread). */
  readonly result: SimResult | null;
}

/** Runs seeds one at a time in a worker thread; a seed over its budget costs the thread, and the next seed gets a new one. */
export class SeedRunner {
  private worker: Worker | null = null;
  private ready: Promise<void> | null = null;
  /** The thread's messages, and its exit (one the runner did not ask for). */
  private onMessage: ((m: SeedWorkerMessage | { type: 'exit'; code: number }) => void) | null = null;

  constructor(
    private readonly input: SeedWorkerInput,
    private readonly timeoutMs: number,
  ) {}

  private start(): Promise<void> {
    const worker = new Worker(new URL('./seed-worker.js', import.meta.url), { workerData: this.input });
    this.worker = worker;
    worker.on('message', (m: SeedWorkerMessage) => this.onMessage?.(m));
    worker.on('error', (e) => this.onMessage?.({ type: 'error', code: 'WASMUX_ERR_PLUGIN_FAILED', message: e.message }));
    // An exit nobody asked for (the runner forgets a thread before it terminates one).
    worker.on('exit', (code) => {
      if (this.worker === worker) this.onMessage?.({ type: 'exit', code });
    });
    worker.unref();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new WasmuxError('WASMUX_ERR_IO', 'the simulation thread did not start in time')),
        START_TIMEOUT_MS,
      );
      this.onMessage = (m) => {
        clearTimeout(timer);
        if (m.type === 'ready') resolve();
        else if (m.type === 'error') reject(new WasmuxError(m.code, m.message));
        else if (m.type === 'exit')
          reject(new WasmuxError('WASMUX_ERR_PLUGIN_FAILED', `the simulation thread exited (code ${m.code}) before it was ready`));
      };
    });
  }

  async run(seed: number, faults: string): Promise<SeedOutcome> {
    if (this.worker === null || this.ready === null) this.ready = this.start();
    await this.ready;
    const worker = this.worker!;
    return new Promise<SeedOutcome>((resolve) => {
      const timer = setTimeout(() => {
        this.onMessage = null;
        void worker.terminate();
        this.worker = null;
        this.ready = null;
        resolve({
          seed,
          faults,
          result: null,
          failure: `ran out of time: ${this.timeoutMs} ms of real time (the plugin never came back to poll.wait: a loop in a handler?)`,
        });
      }, this.timeoutMs);
      this.onMessage = (m) => {
        clearTimeout(timer);
        this.onMessage = null;
        if (m.type === 'result') resolve({ seed, faults, result: m.result, failure: m.result.failure });
        else {
          // The thread failed outside a simulation (a host bug): report it as this seed's failure, start afresh.
          void worker.terminate();
          this.worker = null;
          this.ready = null;
          resolve({
            seed,
            faults,
            result: null,
            failure:
              m.type === 'exit'
                ? `the simulation thread exited (code ${m.code})`
                : `the simulation thread failed: ${m.type === 'error' ? m.message : m.type}`,
          });
        }
      };
      worker.postMessage({ seed, faults } satisfies SeedJob);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    this.ready = null;
    if (w !== null) await w.terminate();
  }
}

export interface TestOptions extends SeedWorkerInput {
  readonly from: number;
  readonly to: number;
  readonly faults: string;
  readonly timeoutMs?: number;
  /** Told of each seed as it ends. */
  readonly progress?: (o: SeedOutcome) => void;
}

export interface TestReport {
  readonly passed: number;
  readonly failed: readonly SeedOutcome[];
  /** The first failing seed, shrunk (its remaining faults and that run); null when every seed passed. */
  readonly shrunk: {
    readonly outcome: SeedOutcome;
    /** Fault kinds switched off. */
    readonly removed: readonly string[];
    /** Faults the failure needed, of those the kind-shrunk run applied (null: pinning them did not fail). */
    readonly pinned: { readonly kept: number; readonly of: number } | null;
  } | null;
}

/** Runs of a seed spent pinning and dropping single faults, at most. */
const MAX_PIN_TRIES = 200;

/** Parses "a..b" (or "a") into a seed range. */
export function parseSeeds(text: string): { from: number; to: number } {
  const m = /^(\d{1,10})(?:\.\.(\d{1,10}))?$/.exec(text);
  const from = m ? Number(m[1]) : Number.NaN;
  const to = m ? Number(m[2] ?? m[1]) : Number.NaN;
  if (!(from <= to && to <= 0xffffffff)) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--seeds must be a..b (whole numbers, a <= b < 2^32) or one seed (got "${text}")`);
  }
  return { from, to };
}

/** Runs every seed of [from, to], then shrinks the first failure. */
export async function testSeeds(opts: TestOptions): Promise<TestReport> {
  const plan: FaultPlan = parseFaults(opts.faults);
  const faults = formatFaults(plan);
  const runner = new SeedRunner(
    { plugin: opts.plugin, scenario: opts.scenario, config: opts.config, policy: opts.policy },
    opts.timeoutMs ?? DEFAULT_SEED_TIMEOUT_MS,
  );
  try {
    const failed: SeedOutcome[] = [];
    let passed = 0;
    for (let seed = opts.from; seed <= opts.to; seed++) {
      const o = await runner.run(seed, faults);
      opts.progress?.(o);
      if (o.failure === null) passed++;
      else failed.push(o);
    }
    if (failed.length === 0) return { passed, failed, shrunk: null };
    // Shrink the first failure: drop fault kinds while it still fails. Not a
    // seed that ran out of time: each try would cost the whole budget again.
    let best = failed[0]!;
    let current = plan;
    const removed: string[] = [];
    for (const kind of best.result === null ? [] : kindsOf(plan)) {
      const candidate = withoutKind(current, kind);
      const o = await runner.run(best.seed, formatFaults(candidate));
      if (o.result !== null && o.failure !== null) {
        current = candidate;
        best = o;
        removed.push(kind);
      }
    }
    // Then pin the faults that run applied to their steps (a schedule: no
    // rates left to draw) and drop them one at a time, the last first, while
    // the seed still fails: what remains is the few faults the failure needs.
    let pinned: { kept: number; of: number } | null = null;
    const applied = best.result?.applied ?? [];
    if (applied.length > 0) {
      let kept = [...applied];
      let o = await runner.run(best.seed, pinFaults(kept));
      if (o.result !== null && o.failure !== null) {
        best = o;
        for (let i = kept.length - 1, tries = 1; i >= 0 && tries < MAX_PIN_TRIES; i--, tries++) {
          const candidate = kept.filter((_, j) => j !== i);
          o = await runner.run(best.seed, pinFaults(candidate));
          if (o.result !== null && o.failure !== null) {
            kept = candidate;
            best = o;
          }
        }
        pinned = { kept: kept.length, of: applied.length };
      }
    }
    return { passed, failed, shrunk: { outcome: best, removed, pinned } };
  } finally {
    await runner.close();
  }
}

export type { PolicyInput };
