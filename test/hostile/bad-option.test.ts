// A plugin that becomes ready, then passes a value no WIT type allows where
// the host lifts an option, flags, enum or variant: an `option` discriminant
// of 2 (or 0xffffffff) for wait's timeout, which was once read as `some`;
// and, from the audit of every other lifted value, interest flags with an
// unknown bit (on a bad handle: lifting comes before the call), a
// shutdown-how of 3, a log level of 5, an ip-address discriminant of 2.
// Each is a trap naming the value, logged once per end and restarted; an
// echo neighbour keeps answering. One worker per case (its instance number
// picks the case).
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, dump, host, waitFor } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const BAD_HANDLE = '(i32.const 0x7ffff)';
const CASES: [call: string, message: string][] = [
  ['(call $wait (i32.const 16) (i32.const 2) (i32.const 50) (i32.const 2048))', "invalid option discriminant 2 for wait's timeout"],
  [
    '(call $wait (i32.const 16) (i32.const -1) (i32.const 50) (i32.const 2048))',
    "invalid option discriminant 4294967295 for wait's timeout",
  ],
  [`(call $register ${BAD_HANDLE} (i64.const 7) (i32.const 4) (i32.const 1100))`, 'invalid interest flags 4'],
  [`(call $shutdown ${BAD_HANDLE} (i32.const 3) (i32.const 1100))`, 'invalid shutdown-how 3'],
  ['(call $log (i32.const 5) (i32.const 0) (i32.const 0))', 'invalid log level 5'],
  [
    '(call $connect (i32.const 2) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 80) (i32.const 1100))',
    'invalid ip-address discriminant 2',
  ],
];

// After the listen (ready), instance i makes CASES[i]'s call; the loop's own waits are never reached.
function badValues(): string {
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

describe('a plugin passing an out-of-range option, flags, enum or variant value', () => {
  it(`traps naming the value, for each of ${CASES.length} cases, and is restarted; its neighbour keeps answering`, async () => {
    const plugin = await watPlugin('bad-option', badValues());
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(plugin, { workers: CASES.length });
    const ends = (i: number) => p.logs.filter((l) => l.instance === i && /^trapped: /.test(l.message));
    expect(await waitFor(() => CASES.every((_, i) => ends(i).length >= 2), 20_000), dump(p.logs)).toBe(true);
    CASES.forEach(([, message], i) => {
      for (const l of ends(i)) expect(l.message, `instance ${i}`).toBe(`trapped: ${message}`);
    });
    expect(p.server.failed).toBeNull();
    const cause = new RegExp(`^trapped: (${CASES.map(([, m]) => escapeRegex(m)).join('|')})$`);
    await expectContained({ hostile: p, neighbour, base, cause, minEnds: 2 * CASES.length });
  }, 60_000);
});
