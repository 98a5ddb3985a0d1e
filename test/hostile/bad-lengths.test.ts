// A plugin that hands the host lengths and pointers outside its memory
// (assembly/test-plugins/bad-lengths): send past the end of memory, send
// with length 0xffffffff, recv into a return area past the end / at
// 0xfffffff0 / misaligned, log past the end, wait with its result area at
// the end. Each is a canonical-ABI violation: the instance traps with a
// message naming the access, logged once, and is restarted. The legitimate
// edge cases (recv of 0xffffffff bytes, which the host caps; an empty send
// at the very end of memory) work and do not end it. An echo plugin served
// beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, connect, dump, endOf, fdBaseline, host, readUntil, settleFds, sleep, testPlugin } from '../helpers/hostile.js';

afterEach(cleanUp);

const OOB = (bytes: string, at: string) =>
  new RegExp(`^trapped: out-of-bounds memory access: ${bytes} bytes at ${at} \\(memory is (\\d+) bytes\\)$`);

const CASES: [key: string, what: string, message: RegExp][] = [
  ['s', 'send of 4096 bytes from 16 bytes before the end of memory', OOB('4096', '\\d+')],
  ['h', 'send of 0xffffffff bytes', OOB('4294967295', '\\d+')],
  ['r', 'recv into a return area past the end of memory', OOB('12', '\\d+')],
  ['x', 'recv into a return area at 0xfffffff0', OOB('12', '4294967280')],
  ['a', 'recv into a misaligned return area', /^trapped: misaligned return area at \d+ \(needs 4\)$/],
  ['l', 'log of 100 bytes from 8 bytes before the end of memory', OOB('100', '\\d+')],
  ['w', 'poll.wait with its result area at the end of memory', OOB('8', '\\d+')],
];

describe('a plugin passing out-of-bounds lengths and pointers', () => {
  it(`traps with a clear message and is restarted for each of ${CASES.length} violations; the legitimate edge cases work; its neighbour keeps echoing`, async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const p = await host(testPlugin('bad-lengths'));
    let n = 0;
    for (const [key, what, message] of CASES) {
      n++;
      // Deaths within 2 s of a start count as "at start" (5 in a row is a crash
      // loop): let the fifth incarnation live long enough to reset that count.
      if (n === 5) {
        const up = p.lines(/^listening on /).at(-1)!;
        await sleep(Math.max(0, 2100 - (performance.now() - up.at)));
      }
      const sock = await connect(p.port);
      sock.write(key);
      const trapped = await p.line(/^trapped: /, n, 5000);
      expect(trapped.message, what).toMatch(message);
      expect(p.count(new RegExp(`^case ${key}$`))).toBe(1);
      await endOf(sock);
      await p.line(/^listening on /, n + 1, 10_000);
    }
    // What is legitimate, however large or close to the edge, does not trap.
    const sock = await connect(p.port);
    sock.write('Rabc');
    expect(await readUntil(sock, /\n/)).toBe('recv-huge ok 3\n');
    sock.write('S');
    expect(await readUntil(sock, /\n/)).toBe('send-empty-at-end ok 0\n');
    sock.destroy();

    expect(p.count(/^trapped: /), dump(p.logs)).toBe(CASES.length);
    expect(
      p.logs.filter((l) => l.level === 'error'),
      dump(p.logs),
    ).toHaveLength(CASES.length);
    expect(p.server.exitReasons()).toEqual([null]);
    const st = p.server.stats()[0]!;
    expect(st.ends).toEqual({ trapped: CASES.length });
    expect(st.restarts).toBe(CASES.length);
    expect(p.server.failed).toBeNull();

    expect(await neighbour.finish()).toBeGreaterThan(20);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 40_000);
});
