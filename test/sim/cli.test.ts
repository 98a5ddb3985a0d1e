// `wasmux test` as a user runs it: exit 0 when every seed passes, 1 when one
// fails (the failing seed printed), 2 for a usage error (with its code); a
// plugin that spins in a handler costs its seed the wall-clock budget, not
// the run. (The planted bug and its reproduction: planted-bug.test.ts.)
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { CLI, wasmux } from '../helpers/cli.js';
import { ECHO, WS, testPlugin } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'wasmux-sim-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('wasmux test', () => {
  it('--help names every fault kind and the exit statuses', async () => {
    const r = await wasmux(['test', '--help']);
    expect(r.code).toBe(0);
    for (const kind of [
      'short-read',
      'short-write',
      'spurious',
      'late',
      'wouldblock',
      'reset',
      'refuse',
      'slow-connect',
      'accept-limit',
      'stall',
      'clock-jump',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^ {2}${kind} +\\S`, 'm'));
    }
    expect(r.stdout).toContain('Exit status: 0 every seed passed, 1 a seed failed, 2 a usage error.');
    expect((await wasmux(['--help'])).stdout).toMatch(/^ {2}test <plugin\.wasm> +run a scenario/m);
  });

  it('echo under all faults, the default scenario, 100 seeds: exit 0', async () => {
    const r = await wasmux(['test', ECHO, '--seeds', '1..100'], 60_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wasmux test: echo, seeds 1\.\.100, faults short-read=0\.3,.*, scenario \(default\)$/m);
    expect(r.stdout).toContain('wasmux test: all 100 seeds passed');
  });

  it("--transcript prints each seed's transcript, passing ones too", async () => {
    const r = await wasmux(['test', ECHO, '--seeds', '7..8', '--faults', 'none', '--transcript'], 30_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^seed 7: pass\n {7}0 {4}1000\.000 {2}simulation: seed 7, faults none, plugin echo, listen 127\.0\.0\.1:8080\n/m,
    );
    expect(r.stdout).toMatch(/^seed 8: pass\n/m);
    expect(r.stdout.match(/ end: stopped$/gm)).toHaveLength(2);
  });

  it('a scenario file with its options; a failing assertion fails the seed (exit 1) and is printed', async () => {
    const file = join(dir, 'hello.mjs');
    writeFileSync(
      file,
      `export const options = { listen: ['127.0.0.1:7000'] };
export default function* (net) {
  const c = net.connect(7000);
  c.write('hello');
  yield* net.until(() => c.text === 'hello', 1000);
  if (c.text !== 'hello') throw new Error('no echo');
  if (net.seed === 3) throw new Error('seed 3 is unlucky');
}
`,
    );
    const r = await wasmux(['test', ECHO, '--seeds', '1..5', '--faults', 'none', '--scenario', file], 30_000);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain('seed 3: FAIL: the scenario failed: seed 3 is unlucky\n');
    expect(r.stdout).toContain('wasmux test: 1 of 5 seeds failed (3)\n');
    expect(r.stdout).toContain('log info guest: echo listening on 127.0.0.1:7000');
    expect(r.stdout).toContain(`reproduce:\n  wasmux test ${ECHO} --seeds 3..3 --faults none --scenario ${file}\n`);
  });

  it("--config reaches the plugin: ws refusing its config fails every seed with the plugin's own message", async () => {
    const r = await wasmux(['test', WS, '--seeds', '1..3', '--faults', 'none', '--config', 'maxMessage=oops'], 30_000);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^seed 1: FAIL: the plugin failed before the scenario finished: .*maxMessage.*$/m);
    expect(r.stdout).toContain('wasmux test: 3 of 3 seeds failed (1, 2, 3)');
    expect(r.stdout).toMatch(/--config maxMessage=oops\n/);
  });

  it('a reader that stops reading (| head) ends the output, not the run: no EPIPE, the exit status stands', async () => {
    const child = spawn(process.execPath, [CLI, 'test', WS, '--seeds', '1..200', '--faults', 'none', '--config', 'maxMessage=oops'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    clearTimeout(timer);
    expect(stderr).toBe('');
    expect(code).toBe(1);
  });

  it('a plugin that spins in a handler: its seeds run out of wall-clock time (exit 1), the run does not hang', async () => {
    const t = performance.now();
    const r = await wasmux(['test', testPlugin('loop-in-handler'), '--seeds', '1..2', '--timeout', '1000', '--faults', 'none'], 30_000);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toContain(
      'seed 1: FAIL: ran out of time: 1000 ms of real time (the plugin never came back to poll.wait: a loop in a handler?)',
    );
    expect(r.stdout).toContain('wasmux test: 2 of 2 seeds failed (1, 2)');
    expect(performance.now() - t).toBeLessThan(15_000);
  });

  it.each([
    [['--faults', 'bogus=1'], 'WASMUX_ERR_BAD_ARGUMENT', /faults: unknown kind "bogus"/],
    [['--faults', 'reset=1.5'], 'WASMUX_ERR_BAD_ARGUMENT', /the rate must be a number from 0 to 1/],
    [['--seeds', '9..2'], 'WASMUX_ERR_BAD_ARGUMENT', /--seeds must be a\.\.b/],
    [['--scenario', '/nonexistent/s.mjs'], 'WASMUX_ERR_IO', /cannot load scenario \/nonexistent\/s\.mjs/],
    [['--timeout', 'soon'], 'WASMUX_ERR_BAD_ARGUMENT', /--timeout must be a whole number/],
  ])('%j: exit 2 with %s', async (args, code, message) => {
    const r = await wasmux(['test', ECHO, '--seeds', '1..1', ...args], 30_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^wasmux: error ${code}: `));
    expect(r.stderr).toMatch(message);
  });

  it('a scenario that is not a generator function: exit 2', async () => {
    const file = join(dir, 'plain.mjs');
    writeFileSync(file, 'export default function (net) {}\n');
    const r = await wasmux(['test', ECHO, '--scenario', file], 30_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`WASMUX_ERR_BAD_ARGUMENT: scenario ${file} must export default a generator function`);
  });

  it('no plugin, or not a plugin: exit 2', async () => {
    expect((await wasmux(['test'])).code).toBe(2);
    const r = await wasmux(['test', join(dir, 'missing.wasm')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^wasmux: error WASMUX_ERR_IO: cannot read plugin /);
  });

  it('the simulated network is not a backend `wasmux run` accepts', async () => {
    const r = await wasmux(['run', ECHO, '--listen', '127.0.0.1:0', '--backend', 'sim']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/WASMUX_ERR_BAD_ARGUMENT: unknown backend "sim"/);
  });
});
