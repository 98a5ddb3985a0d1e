// A plugin that declares more funcref/externref table entries than its
// thread's V8 heap holds (tables live in the V8 heap, not in linear memory,
// so the memory cap does not bound them). Every worker runs under V8
// resource limits: instantiation exhausts that heap, the thread ends alone,
// logged as trapped with its cause, never `crashed`, and this process (the
// host) survives; dying at every start, the plugin is stopped after 5 tries
// with WASMUX_ERR_CRASH_LOOP. An echo neighbour keeps answering.
//
// V8 ends an over-limit thread gracefully only when no single allocation
// overshoots its limit by more than Node's 16 MiB leeway: a table of more
// than 2M entries that crosses the limit aborts the whole process (measured
// on Node 20; see README, Security model). So the policy caps tables at 1M
// elements (8 MiB), well inside the default 64 MiB heap: a guest can reach
// the heap limit only when an operator sets maxHeapMiB below its tables,
// which this test does (maxHeapMiB 8, the smallest allowed, under a table of
// 1M entries, the largest allowed) to check the limit itself.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, host, withTimeout } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const ENTRIES = 500_000;
const EXTERNREF_TABLES = 1;
const FUNCREF_TABLES = 1;
const HEAP_MIB = 8;

const TABLES = `(module
  ${IMPORTS}
  ${runtime()}
  ${`(table ${ENTRIES} externref)\n  `.repeat(EXTERNREF_TABLES)}
  ${`(table ${ENTRIES} funcref)\n  `.repeat(FUNCREF_TABLES)}
  ${listenThen()})`;

describe('a plugin whose tables exhaust its V8 heap', () => {
  it(`ends alone as trapped at every start (${EXTERNREF_TABLES + FUNCREF_TABLES} tables of ${ENTRIES / 1e6}M entries, heap limit ${HEAP_MIB} MiB), then is stopped as a crash loop; the host and its neighbour live on`, async () => {
    const plugin = await watPlugin('heap-exhaustion', TABLES);
    const base = await baseline();
    const neighbour = await Neighbour.start();
    // A budget the instantiation stays within: the heap is what ends it.
    const p = await host(plugin, { policy: { cpuBudgetMs: 10_000, maxHeapMiB: HEAP_MIB, maxTableElements: 1_000_000 }, waitReady: false });
    const err = await withTimeout(
      p.server.ready.then(
        () => null,
        (e: Error & { code?: string }) => e,
      ),
      40_000,
      'crash loop',
    );
    expect(err?.code, dump(p.logs)).toBe('WASMUX_ERR_CRASH_LOOP');
    await withTimeout(p.server.finished(), 5000, 'finished()');

    const cause = `trapped: exhausted its V8 heap (limit ${HEAP_MIB} MiB)`;
    expect(err?.message).toContain(`(last: ${cause})`);
    expect(p.server.stats()[0]).toMatchObject({ running: false, restarts: 4, ends: { trapped: 5 } });
    const ends = p.lines(/^trapped: /);
    console.log(`heap-exhaustion: 5 ends in ${((ends.at(-1)!.at - base.at) / 1000).toFixed(1)} s`);
    await expectContained({ hostile: p, neighbour, base, cause: new RegExp(`^${cause.replace(/[()]/g, '\\$&')}$`), minEnds: 5 });
  }, 90_000);
});
