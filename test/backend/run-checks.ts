/**
 * Runs backend checks (./checks.ts) on every backend available to the node
 * that runs this file: used to run them under Windows' node.exe in wine,
 * where that is iocp. Node 22 strips the types; ./ts-resolve.mjs lets
 * `./checks.js` resolve to the .ts file:
 *
 *   node --import ./test/backend/ts-resolve.mjs test/backend/run-checks.ts <check id>...
 *
 * Prints one JSON line per backend and check: { id, backend, ok, ms, error? }.
 * Checks run one after another; each is bounded in time by its own waits.
 */
import { availableBackends, loadBackend } from '../../dist/host/backends/index.js';
import { CHECKS, runCheck, type CheckId } from './checks.js';

export interface CheckResult {
  id: string;
  backend: string;
  ok: boolean;
  ms: number;
  error?: string;
}

const ids = process.argv.slice(2);
const print = (r: CheckResult) => process.stdout.write(`${JSON.stringify(r)}\n`);

for (const name of availableBackends()) {
  const module = await loadBackend(name);
  for (const id of ids) {
    const t = performance.now();
    try {
      if (!(id in CHECKS)) throw new Error(`no check named ${id}`);
      await runCheck(id as CheckId, module);
      print({ id, backend: name, ok: true, ms: Math.round(performance.now() - t) });
    } catch (e) {
      print({ id, backend: name, ok: false, ms: Math.round(performance.now() - t), error: (e as Error).stack ?? String(e) });
    }
  }
}
