// The size bound: with a small --record-max-bytes, the trace stops at the
// bound with the end record "truncated", the host logs one warning, the
// instance keeps serving (unrecorded), and wasmux replay replays up to the
// bound and says it stopped there (status 0: nothing diverged).
import { statSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { echoOnce, wasmux } from '../helpers/cli.js';
import { cleanUp, noEpoll, record, replayJson, traceDir } from '../helpers/trace.js';

afterEach(cleanUp);

const BOUND = 16 * 1024;

describe.skipIf(noEpoll !== null)(`record size bound${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('ends the trace "truncated", warns once, and the instance keeps serving', async () => {
    const file = `${traceDir()}/echo.trace`;
    const bounded = await record('dist/plugins/echo.wasm', file, ['--record-max-bytes', String(BOUND)]);
    const payload = 'x'.repeat(1000);
    // About 2 KB of trace per exchange (its bytes in, and the calls): past the bound within 10.
    for (let i = 0; i < 30; i++) expect(await echoOnce(bounded.port, `${i} ${payload}`)).toBe(`${i} ${payload}`);
    const ran = await bounded.stop('SIGTERM');
    expect(ran.code).toBe(0);
    const warnings = ran.stderr.split('\n').filter((l) => l.includes('size bound'));
    expect(warnings).toEqual([
      `echo[0] warn: trace reached its size bound (--record-max-bytes ${BOUND}); recording stopped, the instance goes on`,
    ]);
    expect(ran.stderr).toContain('accepted 30,');
    const { size, mode } = statSync(file);
    expect(mode & 0o777).toBe(0o600); // it holds what clients sent: its owner's alone
    expect(size).toBeLessThanOrEqual(BOUND);
    expect(size).toBeGreaterThan(BOUND - 8 * 1024 - 2 * 1024);

    const r = await replayJson(file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.diverged).toBeNull();
    expect(r.json.end.reason).toBe('truncated');
    // Some exchanges were recorded whole, not all of them.
    const replies = r.json.connections.filter((c) => c.closed).length;
    expect(replies).toBeGreaterThan(0);
    expect(replies).toBeLessThan(30);

    const text = await wasmux(['replay', file], 60_000);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/\nend: truncated: the trace was cut at its size bound after call #\d+; replay stopped there\n/);
  }, 60_000);
});
