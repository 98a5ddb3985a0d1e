// A plugin written in raw WAT that becomes ready, then calls the handover
// interface with shapes the SDK never emits: a state list outside its
// memory (past the end, or a length that wraps), an out-of-range return
// area for give, a misaligned or out-of-range one for adopt. Each is a trap of its own
// instance naming what was wrong (adopt's return area is checked before the
// host takes a connection for it), logged once per end and restarted; an
// echo neighbour keeps answering. One worker per case.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, host, waitFor } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

// listenThen() writes listen's result<handle> at 1024: the listener's handle is at 1028.
const LISTENER = '(i32.load (i32.const 1028))';
const CASES: [call: string, message: string][] = [
  [
    '(call $give (i32.const 5) (i32.const 0xffffff00) (i32.const 512) (i32.const 1100))',
    'out-of-bounds memory access: 512 bytes at 4294967040',
  ],
  [
    '(call $give (i32.const 5) (i32.const 16) (i32.const 0x7fffffff) (i32.const 1100))',
    'out-of-bounds memory access: 2147483647 bytes at 16',
  ],
  // give's result<_, error-code> has alignment 1: its return area can only be out of range.
  ['(call $give (i32.const 5) (i32.const 0) (i32.const 0) (i32.const 0xffffffff))', 'out-of-bounds memory access: 2 bytes at 4294967295'],
  [`(call $adopt ${LISTENER} (i32.const 1101))`, 'misaligned return area at 1101'],
  [`(call $adopt ${LISTENER} (i32.const 0xfffffff0))`, 'out-of-bounds memory access: 16 bytes at 4294967280'],
];

function badCalls(): string {
  const blocks = CASES.map((_, i) => `$c${i}`);
  let dispatch = `(br_table ${blocks.join(' ')} (local.get $inst))`;
  CASES.forEach(([call], i) => {
    dispatch = `(block $c${i} ${dispatch}) ${call} (br $done)`;
  });
  return `(module
  ${IMPORTS}
  ${runtime()}
  ${listenThen(`(block $done ${dispatch})`, { loop: false })})`;
}

const escapeRegex = (s: string) => s.replace(/[.()']/g, '\\$&');

describe('a plugin calling handover with out-of-range memory', () => {
  it(`traps naming what was wrong, for each of ${CASES.length} cases, and is restarted; its neighbour keeps answering`, async () => {
    const plugin = await watPlugin('handover-abi', badCalls());
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(plugin, { workers: CASES.length });
    const ends = (i: number) => p.logs.filter((l) => l.instance === i && /^trapped: /.test(l.message));
    expect(await waitFor(() => CASES.every((_, i) => ends(i).length >= 2), 20_000), dump(p.logs)).toBe(true);
    CASES.forEach(([, message], i) => {
      for (const l of ends(i)) expect(l.message, `instance ${i}`).toMatch(new RegExp(`^trapped: ${escapeRegex(message)}`));
    });
    expect(p.server.failed).toBeNull();
    const cause = new RegExp(`^trapped: (${CASES.map(([, m]) => escapeRegex(m)).join('|')})`);
    await expectContained({ hostile: p, neighbour, base, cause, minEnds: 2 * CASES.length });
  }, 60_000);
});
