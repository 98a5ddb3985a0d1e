// A plugin that becomes ready, then recurses without end: V8 throws a
// RangeError ("Maximum call stack size exceeded"), which the host must
// report as the guest's trap ("stack overflow"), not as `crashed` (a host
// bug) with a host stack trace. Two workers: instance 0 recurses in wasm
// only; instance 1 calls a host function at every level, so the overflow
// can land in the host's code, called from the guest. Each end is logged
// once and the instance is restarted; an echo neighbour keeps answering.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, host, waitFor } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const RECURSING = `(module
  ${IMPORTS}
  ${runtime()}
  (func $deep (param $n i32) (result i32)
    (i32.add (call $deep (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  (func $deepThroughHost (param $n i32) (result i32)
    ;; register a bad handle: a host call that returns bad-handle, at every level
    (call $register (i32.const 0x7ffff) (i64.const 1) (i32.const 1) (i32.const 1100))
    (i32.add (call $deepThroughHost (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))
  ${listenThen(
    `(drop (if (result i32) (i32.eqz (local.get $inst))
      (then (call $deep (i32.const 0)))
      (else (call $deepThroughHost (i32.const 0)))))`,
    { loop: false },
  )})`;

describe('a plugin recursing without end', () => {
  it('traps with "stack overflow", in wasm and in a host call made from deep in its stack, and is restarted; its neighbour keeps answering', async () => {
    const plugin = await watPlugin('stack-overflow', RECURSING);
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(plugin, { workers: 2 });
    const ends = (i: number) => p.logs.filter((l) => l.instance === i && l.level === 'error');
    expect(await waitFor(() => ends(0).length >= 3 && ends(1).length >= 3, 20_000), dump(p.logs)).toBe(true);
    for (const i of [0, 1]) for (const l of ends(i)) expect(l.message, `instance ${i}`).toBe('trapped: stack overflow');
    expect(p.server.failed).toBeNull();
    await expectContained({ hostile: p, neighbour, base, cause: /^trapped: stack overflow$/, minEnds: 6 });
  }, 60_000);
});
