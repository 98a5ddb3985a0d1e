// A plugin whose cabi_realloc calls an import while the host is in the
// middle of one of its own calls into the guest (lowering run's config
// string here; recv's buffer and wait's event list go the same way). The
// canonical ABI forbids it (may_leave is false inside realloc and
// post-return): the host traps the instance with that cause rather than
// running the import inside its half-done call. Dying at every start, the
// plugin is stopped as a crash loop; a neighbour keeps echoing. The same
// plugin with a config that does not trigger the call runs normally.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, connect, dump, host, withTimeout } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const TRIGGER = 'reenter-please'; // 14 bytes: realloc for a block of 14 calls log first

const PLUGIN = `(module ${IMPORTS}
  (memory (export "memory") 1 16)
  (global $bump (mut i32) (i32.const 32768))
  (data (i32.const 100) "from inside cabi_realloc")
  (func (export "cabi_realloc") (param $old i32) (param $oldSize i32) (param $align i32) (param $size i32) (result i32)
    (local $p i32)
    (if (i32.eq (local.get $size) (i32.const ${TRIGGER.length}))
      (then (call $log (i32.const 2) (i32.const 100) (i32.const 24))))
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (i32.and (i32.add (local.get $size) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  ${listenThen()})`;

const CAUSE = 'trapped: the plugin called an import from cabi_realloc or a post-return function, where the canonical ABI forbids it';

describe('an import called from cabi_realloc', () => {
  it("traps the instance with the canonical ABI's rule as its cause; the import does not run; the neighbour keeps echoing", async () => {
    const plugin = await watPlugin('realloc-reentry', PLUGIN);
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(plugin, { config: TRIGGER, waitReady: false });
    const err = await withTimeout(
      p.server.ready.then(
        () => null,
        (e: Error & { code?: string }) => e,
      ),
      30_000,
      'crash loop',
    );
    expect(err?.code, dump(p.logs)).toBe('WASMUX_ERR_CRASH_LOOP');
    expect(err?.message).toContain(`(last: ${CAUSE})`);
    expect(p.count(/from inside cabi_realloc/), 'the import did not run').toBe(0);
    await expectContained({ hostile: p, neighbour, base, cause: new RegExp(`^${CAUSE.replace(/[()]/g, '\\$&')}$`), minEnds: 5 });
  }, 60_000);

  it('runs the same plugin normally when realloc makes no call', async () => {
    const plugin = await watPlugin('realloc-reentry', PLUGIN);
    const p = await host(plugin, { config: 'x' });
    (await connect(p.port)).destroy();
    expect(p.server.exitReasons()).toEqual([null]);
  });
});
