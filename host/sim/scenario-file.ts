/**
 * A scenario file (`wasmux test --scenario <file.mjs>`): an ES module whose
 * default export is the scenario, a generator function `function* (net)`
 * (simulate.ts Net). It may also export `options`: { policy, config,
 * listen, pipeBytes, peers }, the plugin's settings under this scenario
 * (simulate.ts SimOptions).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WasmuxError, type WasmuxErrorCode } from '../errors.js';
import type { PolicyInput } from '../sandbox/policy.js';
import { defaultScenario } from './default-scenario.js';
import type { Scenario, SimResult } from './simulate.js';

export interface ScenarioOptions {
  readonly policy?: PolicyInput;
  readonly config?: string;
  readonly listen?: readonly string[];
  readonly pipeBytes?: number;
  /** Addresses the scenario listens on from the start (SimOptions.peers). */
  readonly peers?: readonly string[];
}

const OPTION_KEYS = new Set(['policy', 'config', 'listen', 'pipeBytes', 'peers']);

/** The scenario of `file` (null: the default scenario) and its options. */
export async function loadScenario(file: string | null): Promise<{ scenario: Scenario; options: ScenarioOptions }> {
  if (file === null) return { scenario: defaultScenario, options: {} };
  let mod: { default?: unknown; options?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(file)).href)) as typeof mod;
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_IO', `cannot load scenario ${file}: ${(e as Error).message}`);
  }
  const scenario = mod.default;
  if (typeof scenario !== 'function' || scenario.constructor?.name !== 'GeneratorFunction') {
    throw new WasmuxError(
      'WASMUX_ERR_BAD_ARGUMENT',
      `scenario ${file} must export default a generator function: export default function* (net) { ... }`,
    );
  }
  const options = (mod.options ?? {}) as Record<string, unknown>;
  if (typeof options !== 'object' || options === null)
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `scenario ${file}: "options" must be an object`);
  for (const k of Object.keys(options)) {
    if (!OPTION_KEYS.has(k))
      throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `scenario ${file}: unknown option "${k}" (known: ${[...OPTION_KEYS].join(', ')})`);
  }
  return { scenario: scenario as Scenario, options: options as ScenarioOptions };
}

/** What the seed worker (seed-worker.ts) starts with. */
export interface SeedWorkerInput {
  readonly plugin: string;
  readonly scenario: string | null;
  readonly config?: string;
  readonly policy?: PolicyInput;
}

/** One seed for the worker to run. */
export interface SeedJob {
  readonly seed: number;
  readonly faults: string;
}

export type SeedWorkerMessage =
  | { type: 'ready' }
  | { type: 'result'; result: SimResult }
  | { type: 'error'; code: WasmuxErrorCode; message: string };
