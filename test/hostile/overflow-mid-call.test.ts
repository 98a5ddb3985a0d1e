// A plugin that recurses until its stack overflows, opening and closing a
// listener at every level, so that the overflow lands in the host's code in
// the middle of listen as well as in the guest's. The kill gate cannot help
// there (nothing is killed: an exception unwinds the call). Were the
// overflow to land after socket() returned and before the handle table holds
// the socket, only the registry cell the backend records every new socket in
// (BackendOptions.creating, test/creating-cell.test.ts) would let the
// supervisor close it. On Node 20 none of 48 frame sizes tried put the
// overflow there; the cell closes the window by construction, this test
// checks the outcome over several frame sizes: every end a "stack overflow"
// trap, descriptors back to baseline, nothing listening on the port.
import { describe, it, expect, afterEach } from 'vitest';
import net from 'node:net';
import { Neighbour, cleanUp, dump, host, waitFor } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

/** Live i64 locals across the recursive call: each adds a stack slot to the frame. */
const PADDINGS = [0, 1, 3, 6, 10, 15];
const DEATHS_EACH = 2;

function diver(pad: number): string {
  const locals = Array.from({ length: pad }, (_, i) => `(local $p${i} i64)`).join(' ');
  const set = Array.from({ length: pad }, (_, i) => `(local.set $p${i} (i64.extend_i32_u (i32.add (local.get $n) (i32.const ${i}))))`).join(
    ' ',
  );
  const use = Array.from({ length: pad }, (_, i) => `(drop (local.get $p${i}))`).join(' ');
  return `(module ${IMPORTS} ${runtime()}
  ;; listen on the address copied to 512 (a socket-address: octets @2..5, port @18), result at 1024
  (func $listenOwn
    (call $listen (i32.load8_u (i32.const 512))
      (i32.load8_u (i32.const 514)) (i32.load8_u (i32.const 515)) (i32.load8_u (i32.const 516)) (i32.load8_u (i32.const 517))
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.load16_u (i32.const 530)) (i32.const 16) (i32.const 1024)))
  (func $dive (param $n i32) ${locals}
    ${set}
    (call $listenOwn)
    (if (i32.eqz (i32.load8_u (i32.const 1024))) (then (call $close (i32.load (i32.const 1028)) (i32.const 1040))))
    (call $dive (i32.add (local.get $n) (i32.const 1)))
    ${use})
  (func (export "run") (param $cfg i32) (param $cfgLen i32) (param $list i32) (param $count i32) (param $inst i32) (result i32)
    (memory.copy (i32.const 512) (local.get $list) (i32.const 20))
    (call $listenOwn) ;; kept open: the instance is ready
    (call $dive (i32.const 0))
    (i32.const 0)))`;
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

describe('a stack overflow inside a host call that creates a socket', () => {
  it(`leaves no descriptor behind (${PADDINGS.length} frame sizes, ${DEATHS_EACH} deaths each); nothing listens on the port afterwards`, async () => {
    const plugins = await Promise.all(PADDINGS.map((pad) => watPlugin(`overflow-mid-call-${pad}`, diver(pad))));
    for (const plugin of plugins) {
      const base = await baseline();
      const neighbour = await Neighbour.start();
      const p = await host(plugin, { policy: { cpuBudgetMs: 10_000 } });
      const ok = await waitFor(() => p.count(/^trapped: /) >= DEATHS_EACH, 30_000);
      expect(ok, dump(p.logs)).toBe(true);
      await expectContained({ hostile: p, neighbour, base, cause: /^trapped: stack overflow$/, minEnds: DEATHS_EACH });
      expect(await refused(p.port), `nothing listens on ${p.port}`).toBe(true);
    }
  }, 120_000);
});
