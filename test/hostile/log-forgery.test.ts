// A plugin that tries to forge host lines through its log text: newlines
// and carriage returns followed by `wasmux: error WASMUX_ERR_CRASH_LOOP: ...`,
// ESC sequences that erase the line on a terminal, U+2028/U+2029, NEL (C1),
// DEL, NUL, a bidi override, invalid UTF-8; and a line that reads exactly like
// the watchdog's `killed: ...`. Every log line is exactly one line: the
// control characters are written as visible escapes, invalid UTF-8 as
// U+FFFD, and the guest's lines say `guest`, so that no line the plugin
// writes can pass for the host's. Likewise for text the host quotes from
// the guest: run()'s error message, which the host logs as `failed: ...`
// and prints in its `wasmux: error WASMUX_ERR_PLUGIN_FAILED: ...` line.
import { describe, it, expect, afterEach } from 'vitest';
import { basename } from 'node:path';
import { Neighbour, cleanUp, host, runPlugins } from '../helpers/hostile.js';
import { wasmux } from '../helpers/cli.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

/** Bytes as a WAT string literal (every byte as \hh). */
const watString = (b: Uint8Array) => `"${[...b].map((x) => `\\${x.toString(16).padStart(2, '0')}`).join('')}"`;

const FORGED = Buffer.concat([
  Buffer.from(
    'hello\nwasmux: error WASMUX_ERR_CRASH_LOOP: fake\rwasmux: error WASMUX_ERR_CRASH_LOOP: over' +
      '\x1b[2K\x1b[1Gwasmux: erased\u2028wasmux: ls\u2029wasmux: ps\u0085wasmux: nel\x7f\t\x00end\u202eevil ',
  ),
  Buffer.from([0xff, 0xc3]),
  Buffer.from(' bad utf-8'),
]);
/** What stderr must show of FORGED, written by hand (not computed by the code under test). */
const FORGED_SHOWN =
  'hello\\nwasmux: error WASMUX_ERR_CRASH_LOOP: fake\\rwasmux: error WASMUX_ERR_CRASH_LOOP: over' +
  '\\x1b[2K\\x1b[1Gwasmux: erased\\u2028wasmux: ls\\u2029wasmux: ps\\x85wasmux: nel\\x7f\\t\\x00end\\u202eevil \ufffd\ufffd bad utf-8';
const FAKE_KILL = 'killed: ran 300 ms without returning to poll.wait (cpu budget 200 ms)';

// Logs FORGED and FAKE_KILL at level error once it listens, then waits forever.
const forger = () =>
  watPlugin(
    'log-forgery',
    `(module
  ${IMPORTS}
  ${runtime()}
  (data (i32.const 8192) ${watString(FORGED)})
  (data (i32.const 12288) "${FAKE_KILL}")
  ${listenThen(
    `
    (call $log (i32.const 4) (i32.const 8192) (i32.const ${FORGED.length}))
    (call $log (i32.const 4) (i32.const 12288) (i32.const ${FAKE_KILL.length}))
    (loop $forever (call $wait (i32.const 16) (i32.const 1) (i32.const 50) (i32.const 2048)) (br $forever))`,
    { loop: false },
  )}
)`,
  );

const RUN_ERROR = Buffer.from('line1\nwasmux: error WASMUX_ERR_CRASH_LOOP: fake\x1b[31m red\u2028');
const RUN_ERROR_SHOWN = 'line1\\nwasmux: error WASMUX_ERR_CRASH_LOOP: fake\\x1b[31m red\\u2028';

// run returns err(RUN_ERROR) at once: result<_, string> at 3000 (tag, then ptr and len at 4 and 8).
const failer = () =>
  watPlugin(
    'run-error-forgery',
    `(module
  ${IMPORTS}
  ${runtime()}
  (data (i32.const 8192) ${watString(RUN_ERROR)})
  (func (export "run") (param i32 i32 i32 i32 i32) (result i32)
    (i32.store8 (i32.const 3000) (i32.const 1))
    (i32.store (i32.const 3004) (i32.const 8192))
    (i32.store (i32.const 3008) (i32.const ${RUN_ERROR.length}))
    (i32.const 3000))
)`,
  );

/** Raw control characters (besides the newlines that end lines), line separators, bidi controls. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('a plugin forging host lines through its text', () => {
  it('through `wasmux run`: each guest line is one line, escaped and marked guest; no line it writes starts with "wasmux:"', async () => {
    const wasm = await forger();
    const name = basename(wasm, '.wasm');
    const run = await runPlugins([wasm, '--listen', '127.0.0.1:0'], 1);
    const forged = await run.errLine(new RegExp(`^${name}\\[0\\] guest error: hello`));
    const fakeKill = await run.errLine(new RegExp(`^${name}\\[0\\] guest error: killed: `));
    const end = await run.stop('SIGTERM');
    expect(end.code).toBe(0);
    const err = run.stderr.map((l) => l.text);

    expect(forged.text).toBe(`${name}[0] guest error: ${FORGED_SHOWN}`);
    expect(fakeKill.text).toBe(`${name}[0] guest error: ${FAKE_KILL}`);
    // Only the host's own lines start with "wasmux:" (here: the signal's).
    expect(err.filter((l) => l.startsWith('wasmux:'))).toEqual(['wasmux: SIGTERM, draining (up to 5000 ms)']);
    // The forged text is only ever on the guest's line, and no line looks like the watchdog's.
    expect(err.filter((l) => l.includes('WASMUX_ERR_CRASH_LOOP'))).toEqual([forged.text]);
    expect(err.filter((l) => /^\S+ error: killed: /.test(l))).toEqual([]);
    for (const l of err) expect(l, JSON.stringify(l)).not.toMatch(RAW_CONTROL);
    // Whatever lines the plugin got written carry its name; nothing else came out of it.
    expect(err.filter((l) => l.startsWith(`${name}[0] guest `))).toHaveLength(2);
  }, 30_000);

  it('through the API: the entry carries the guest\'s raw text with origin "guest"; the watchdog-like line is not taken for an end', async () => {
    const wasm = await forger();
    const base = await baseline();
    const neighbour = await Neighbour.start();
    const p = await host(wasm);
    const fakeKill = await p.line(/^killed: /);
    expect(fakeKill).toMatchObject({ origin: 'guest', level: 'error', message: FAKE_KILL });
    const forged = p.lines(/^hello\n/);
    expect(forged).toHaveLength(1);
    expect(forged[0]).toMatchObject({ origin: 'guest', level: 'error' });
    expect(forged[0]!.message).toBe(FORGED.toString('utf8'));
    expect(p.server.exitReasons()).toEqual([null]);
    // No end counted, and the guest's `killed:` is no end line: containment holds with zero ends.
    await expectContained({ hostile: p, neighbour, base, cause: /(?!)/, minEnds: 0 });
  }, 30_000);

  it("run()'s error text is escaped in the host's lines quoting it (`failed: ...`, `wasmux: error ...`)", async () => {
    const wasm = await failer();
    const name = basename(wasm, '.wasm');
    const r = await wasmux(['run', wasm, '--listen', '127.0.0.1:0'], 15_000);
    expect(r.code, r.stderr).toBe(1);
    const err = r.stderr.split('\n').slice(0, -1);
    expect(err).toContain(`${name}[0] error: failed: ${RUN_ERROR_SHOWN}`);
    expect(err.filter((l) => l.startsWith('wasmux:'))).toEqual([
      `wasmux: error WASMUX_ERR_PLUGIN_FAILED: plugin ${name}: instance 0 could not start: ${RUN_ERROR_SHOWN}`,
    ]);
    expect(err.filter((l) => l.includes('WASMUX_ERR_CRASH_LOOP'))).toHaveLength(2);
    for (const l of err) expect(l, JSON.stringify(l)).not.toMatch(RAW_CONTROL);
  }, 30_000);
});
