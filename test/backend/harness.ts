/**
 * Runs backend checks (./checks.ts) as vitest tests, on every backend the
 * host knows (BACKEND_NAMES):
 *
 * - in this process, on each backend available here (availableBackends():
 *   epoll and poll on Linux, and kqueue: through WASMUX_KQUEUE_LIBRARY when
 *   it is set, otherwise through the in-repository stand-in, 64-byte
 *   layout, which this file names for its own process), with the
 *   descriptor count checked after every check;
 * - iocp, on Linux, under Windows' node.exe in wine (test/helpers/wine.ts):
 *   one node.exe per test file runs the file's checks (./run-checks.ts) and
 *   each test reports its check's result;
 * - any other backend is skipped, the host's own reason in the title.
 *
 * A check that is known to fail on a backend (a deviation from the contract
 * this suite found; see `deviations` in checks.ts) must fail there, with the
 * message given: when it starts passing, the test says so.
 */
import '../stand-ins/kqueue/here.js';
import { describe, it, beforeAll, expect } from 'vitest';
import { BACKEND_NAMES, availableBackends, loadBackend, resolveBackend } from '../../dist/host/backends/index.js';
import type { BackendModule, BackendName } from '../../dist/host/backends/backend.js';
import { CHECKS, runCheck, type Check, type CheckId } from './checks.js';
import type { CheckResult } from './run-checks.js';
import { wineExec, wineNode } from '../helpers/wine.js';
import { openFds } from '../helpers/server.js';

type Where = { how: 'here' } | { how: 'wine' } | { how: 'skip'; why: string };

function unavailableReason(name: BackendName): string {
  try {
    resolveBackend(name);
    return 'not listed by availableBackends()';
  } catch (e) {
    return (e as Error).message;
  }
}

function whereOf(name: BackendName): Where {
  if (availableBackends().includes(name)) return { how: 'here' };
  const why = unavailableReason(name);
  if (name === 'iocp' && process.platform === 'linux') {
    const wine = wineNode();
    return 'skip' in wine ? { how: 'skip', why: `${why}; and wine cannot run it here: ${wine.skip}` } : { how: 'wine' };
  }
  return { how: 'skip', why };
}

interface Outcome {
  ok: boolean;
  error: string;
}

/** Runs `ids` under wine in one node.exe; the result of each, by id. */
async function underWine(ids: readonly CheckId[]): Promise<Map<string, Outcome>> {
  const run = await wineExec(['--import', './test/backend/ts-resolve.mjs', 'test/backend/run-checks.ts', ...ids], 170_000);
  const results = new Map<string, Outcome>();
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const r = JSON.parse(line) as CheckResult;
    if (r.backend === 'iocp') results.set(r.id, { ok: r.ok, error: r.error ?? '' });
  }
  const missing = ids.filter((id) => !results.has(id));
  const why = `node.exe under wine ended (${run.code ?? run.signal}) without a result; stderr:\n${run.stderr.slice(-2000)}`;
  for (const id of missing) results.set(id, { ok: false, error: why });
  return results;
}

async function here(module: BackendModule, id: CheckId): Promise<Outcome> {
  const before = process.platform === 'linux' ? openFds() : 0;
  try {
    await runCheck(id, module);
  } catch (e) {
    return { ok: false, error: (e as Error).stack ?? String(e) };
  }
  if (process.platform === 'linux') {
    const after = openFds();
    if (after !== before) return { ok: false, error: `descriptors: ${before} before the check, ${after} after` };
  }
  return { ok: true, error: '' };
}

/** One describe per backend for `feature`: a test per check. */
export function backendSuite(feature: string, ids: readonly CheckId[]): void {
  for (const name of BACKEND_NAMES) {
    const where = whereOf(name);
    const title =
      where.how === 'skip'
        ? `${feature} on ${name} (skipped: ${where.why})`
        : where.how === 'wine'
          ? `${feature} on ${name}, under wine`
          : `${feature} on ${name}`;
    describe.skipIf(where.how === 'skip')(title, () => {
      let module: BackendModule | null = null;
      let wine: Map<string, Outcome> | null = null;
      beforeAll(async () => {
        if (where.how === 'here') module = await loadBackend(name);
        if (where.how === 'wine') wine = await underWine(ids);
      }, 180_000);

      for (const id of ids) {
        const check: Check = CHECKS[id];
        const deviation = check.deviations?.[name];
        it(deviation ? `${check.title} — known deviation on ${name}: ${deviation.why}` : check.title, async () => {
          const outcome = where.how === 'wine' ? wine!.get(id)! : await here(module!, id);
          if (deviation) {
            expect(outcome.ok, `expected to fail on ${name} (${deviation.why}); it passes now: drop the deviation`).toBe(false);
            expect(outcome.error).toMatch(deviation.fails);
          } else if (!outcome.ok) {
            throw new Error(outcome.error);
          }
        }, 60_000);
      }
    });
  }
}
