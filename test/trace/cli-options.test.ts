// The command line of recording and replay: the help texts name the
// command and its options with their defaults, and every misuse is one clear
// line with WASMUX_ERR_BAD_ARGUMENT and status 2, before anything runs.
import { describe, expect, it } from 'vitest';
import { wasmux } from '../helpers/cli.js';

describe('record and replay on the command line', () => {
  it('is in the help texts', async () => {
    const top = await wasmux(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/\n {2}replay <trace> +re-run a recorded instance offline/);
    const run = await wasmux(['run', '--help']);
    expect(run.stdout).toMatch(/--record <file>[\s\S]*?<file>\.<instance>/);
    expect(run.stdout).toMatch(/--record-max-bytes <n>[\s\S]*?\[default: 268435456\]/);
    const replay = await wasmux(['replay', '--help']);
    expect(replay.code).toBe(0);
    for (const opt of ['--json', '--log-level', '--allow-other-plugin', 'WASMUX_ERR_TRACE']) expect(replay.stdout).toContain(opt);
    expect((await wasmux(['help', 'replay'])).stdout).toBe(replay.stdout);
  });

  it('refuses misuse with one line and status 2', async () => {
    const cases: [string[], RegExp][] = [
      [['replay'], /replay takes a trace file and, optionally, the plugin/],
      [['replay', 'a', 'b', 'c'], /replay takes a trace file and, optionally, the plugin/],
      [['replay', 'a', '--log-level', 'loud'], /--log-level must be trace, debug, info, warn or error \(got "loud"\)/],
      [
        ['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--record-max-bytes', '100'],
        /--record-max-bytes needs --record <file>/,
      ],
      [
        ['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--record', '/no/such/dir/t.trace'],
        /--record \/no\/such\/dir\/t\.trace: cannot write there/,
      ],
      [
        ['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--record', '/tmp/x.trace', '--record-max-bytes', 'lots'],
        /--record-max-bytes must be a whole number/,
      ],
      [
        ['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--record', '/tmp/x.trace', '--record-max-bytes', '0'],
        /--record-max-bytes must be at least 1/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await wasmux(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^wasmux: error WASMUX_ERR_BAD_ARGUMENT: .*\n$/);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  }, 60_000);
});
