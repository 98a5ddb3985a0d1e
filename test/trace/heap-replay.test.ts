// A recorded instance that exhausted its thread's V8 heap (a plugin whose
// tables outgrow --max-heap 8 at instantiation, as in
// test/hostile/heap-exhaustion.test.ts): its thread ends without writing its
// trace's end, the supervisor writes it ("trapped: exhausted its V8 heap"),
// each restart has its own trace, and `wasmux replay`, whose thread gets
// the recorded heap limit, exhausts it again and reports the same trap,
// while the replaying process lives on.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { wasmux } from '../helpers/cli.js';
import { cleanUp, noEpoll, replayJson, traceDir } from '../helpers/trace.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const HEAP_MIB = 8;
const TABLES = `(module
  ${IMPORTS}
  ${runtime()}
  (table 500000 externref)
  (table 500000 funcref)
  ${listenThen()})`;

describe.skipIf(noEpoll !== null)(`record and replay: a heap exhausted${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('replays to the same trap, in a thread with the recorded heap limit', async () => {
    const plugin = await watPlugin('heap-exhaustion', TABLES);
    const file = `${traceDir()}/heap.trace`;
    const args = ['run', plugin, '--listen', '127.0.0.1:0', '--max-heap', String(HEAP_MIB), '--max-table-elements', '1000000'];
    const ran = await wasmux([...args, '--cpu-budget', '10000', '--backend', 'epoll', '--record', file], 60_000);
    expect(ran.stderr).toContain('WASMUX_ERR_CRASH_LOOP');
    const cause = `exhausted its V8 heap (limit ${HEAP_MIB} MiB)`;
    expect(ran.stderr).toContain(`error: trapped: ${cause}`);
    // Five deaths at start: five threads, five traces.
    for (const name of [file, `${file}.r1`, `${file}.r2`, `${file}.r3`, `${file}.r4`]) expect(existsSync(name), name).toBe(true);

    const r = await replayJson(`${file}.r2`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.diverged).toBeNull();
    expect(r.json.recorded).toEqual({ reason: 'trapped', message: cause });
    expect(r.json.end).toEqual({ reason: 'trapped', message: cause });
    expect(r.json.header.incarnation).toBe(2);
  }, 90_000);
});
