/**
 * redis-benchmark, Redis's own load generator, runs against the resp plugin
 * to the end with no error: it starts (it asks CONFIG GET save and
 * appendonly first), its 50 connections pipeline 16 requests each, and each
 * of its tests prints a rate. The pipelined INCRs must also have counted
 * exactly: the plugin must not drop or repeat a request under load.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { exchange, missing, runProgram, startResp, unharmed, type RespServer } from '../helpers/resp.js';
import { destroyClients, problems } from '../helpers/server.js';

const noBenchmark = missing('redis-benchmark');
let resp: RespServer;

describe.skipIf(noBenchmark !== null)(`resp under redis-benchmark${noBenchmark ? ` — skipped: ${noBenchmark}` : ''}`, () => {
  beforeAll(async () => {
    resp = await startResp();
  });

  afterAll(async () => {
    destroyClients();
    await resp?.stop();
  });

  it('redis-benchmark -q -n 100000 -t set,get,incr,mset -P 16 completes without errors', async () => {
    const run = await runProgram(
      'redis-benchmark',
      ['-h', '127.0.0.1', '-p', String(resp.port), '-q', '-n', '100000', '-t', 'set,get,incr,mset', '-P', '16'],
      { timeoutMs: 60_000 },
    );
    // Errors from the server make it print "Error from server: ..." and exit 1;
    // a failed CONFIG GET makes it warn.
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    // With -q it rewrites a progress line (\r) and ends each test with its rate.
    const rates = new Map<string, number>();
    for (const line of run.stdout.split(/[\r\n]+/)) {
      const m = /^([A-Z]+(?: \(10 keys\))?): ([\d.]+) requests per second/.exec(line.trim());
      if (m) rates.set(m[1]!, Number(m[2]));
    }
    expect([...rates.keys()].sort()).toEqual(['GET', 'INCR', 'MSET (10 keys)', 'SET']);
    for (const [test, rate] of rates) expect(rate, test).toBeGreaterThan(0);

    // INCR runs on one key (no -r): it counted every request, once.
    expect(await exchange(resp.port, 'GET counter:__rand_int__\r\n', 1)).toEqual(['$6\r\n100000\r\n']);
    expect(unharmed(resp)).toBe(true);
    expect(problems(resp.logs)).toEqual([]);
  }, 90_000);
});
