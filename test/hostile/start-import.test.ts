// A plugin whose start function calls one of its imports. The start function
// runs inside instantiation, before the host has the instance (its memory,
// its allocator): each such call is a trap that names the import, made
// before the import does anything (no socket, no log line), never a host
// TypeError (`crashed`). Trapping at every start, the plugin is stopped after
// 5 tries with WASMUX_ERR_CRASH_LOOP; an echo neighbour keeps answering.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, host, withTimeout } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const V4_LOOPBACK =
  '(i32.const 0) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)';

// Each: the import (as the trap names it) and a start function calling it.
const CASES: [string, string][] = [
  // Gated calls (they would open or close a descriptor): refused by the kill gate.
  ['wasmux:plugin/tcp@0.1.0#listen', `(call $listen ${V4_LOOPBACK} (i32.const 7000) (i32.const 16) (i32.const 1024))`],
  ['wasmux:plugin/tcp@0.1.0#close', '(call $close (i32.const 1) (i32.const 1024))'],
  // Calls that touch memory first: refused by the glue's memory.
  ['wasmux:plugin/poll@0.1.0#wait', '(call $wait (i32.const 16) (i32.const 1) (i32.const 0) (i32.const 2048))'],
  ['wasmux:plugin/log@0.1.0#log', '(call $log (i32.const 2) (i32.const 0) (i32.const 4))'],
];

describe('a plugin whose start function calls an import', () => {
  it.each(CASES)(
    'traps naming %s, at every start, then is stopped as a crash loop; its neighbour keeps answering',
    async (name, call) => {
      const plugin = await watPlugin(
        `start-import-${name.replace(/\W+/g, '-')}`,
        `(module
      ${IMPORTS}
      ${runtime()}
      (data (i32.const 0) "hi from start")
      (func $start ${call})
      (start $start)
      ${listenThen()})`,
      );
      const base = await baseline();
      const neighbour = await Neighbour.start();
      const p = await host(plugin, { waitReady: false });
      const err = await withTimeout(
        p.server.ready.then(
          () => null,
          (e: Error & { code?: string }) => e,
        ),
        20_000,
        'crash loop',
      );
      expect(err?.code, dump(p.logs)).toBe('WASMUX_ERR_CRASH_LOOP');
      await withTimeout(p.server.finished(), 5000, 'finished()');

      const trap = `trapped: the plugin called ${name} from its start function, before the instance exists`;
      expect(err?.message).toContain(`(last: ${trap})`);
      expect(p.server.stats()[0]).toMatchObject({ running: false, restarts: 4, ends: { trapped: 5 } });
      // The call did nothing before it trapped: no line logged for the plugin, no address denied.
      expect(
        p.logs.filter((l) => l.level !== 'debug' && !/^(trapped: |restarting in |plugin )/.test(l.message)),
        dump(p.logs),
      ).toEqual([]);
      await expectContained({ hostile: p, neighbour, base, cause: new RegExp(`^${trap.replace(/[.#()]/g, '\\$&')}$`), minEnds: 5 });
    },
    60_000,
  );
});
