/**
 * The thread `wasmux test` runs seeds in (runner.ts): it loads the plugin
 * and the scenario once, then runs one seed per message and posts each
 * result. A guest that spins in a handler never returns to `poll.wait`, so
 * nothing in this thread could stop it: the runner terminates the thread
 * when a seed overruns its wall-clock budget, and starts a new one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WasmuxError } from '../errors.js';
import { loadScenario, type SeedJob, type SeedWorkerInput, type SeedWorkerMessage } from './scenario-file.js';
import { prepareSimulation, runSimulation } from './simulate.js';

const input = workerData as SeedWorkerInput;
const port = parentPort!;
const post = (m: SeedWorkerMessage) => port.postMessage(m);

try {
  const { scenario, options } = await loadScenario(input.scenario);
  const policy = { ...options.policy, ...input.policy };
  const plugin = await prepareSimulation(input.plugin, policy);
  port.on('message', (job: SeedJob) => {
    const r = runSimulation(plugin, {
      scenario,
      seed: job.seed,
      faults: job.faults,
      config: input.config ?? options.config,
      listen: options.listen,
      pipeBytes: options.pipeBytes,
      peers: options.peers,
    });
    post({ type: 'result', result: { ...r, applied: [...r.applied] } });
  });
  post({ type: 'ready' });
} catch (e) {
  post({
    type: 'error',
    code: e instanceof WasmuxError ? e.code : 'WASMUX_ERR_BAD_ARGUMENT',
    message: e instanceof Error ? e.message : String(e),
  });
}
