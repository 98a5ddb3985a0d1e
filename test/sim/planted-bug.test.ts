// The simulator's reason to exist, shown on a plugin with a planted bug:
// assembly/test-plugins/fragile-lines answers each line in upper case but
// takes whatever one recv returned to be one whole line. On real loopback
// (a real client writing whole small lines, one at a time) it answers
// correctly; under simulation with short reads the scenario
// (test/sim/scenarios/lines.mjs) catches it within 100 seeds, and the seed
// `wasmux test` prints reproduces the failure, transcript and all.
import { describe, it, expect, afterEach } from 'vitest';
import { fileURLToPath } from 'node:url';
import { cleanUp, connect, host, readUntil, testPlugin } from '../helpers/hostile.js';
import { wasmux } from '../helpers/cli.js';
import { prepareSimulation, runSimulation } from '../../dist/host/sim/simulate.js';
import { loadScenario } from '../../dist/host/sim/scenario-file.js';

afterEach(cleanUp);

const PLUGIN = testPlugin('fragile-lines');
const SCENARIO = fileURLToPath(new URL('./scenarios/lines.mjs', import.meta.url));
const FAULTS = 'short-read=0.3';

describe('fragile-lines (one recv taken for one line)', () => {
  it('answers correctly on real loopback when each line arrives whole', async () => {
    const p = await host(PLUGIN);
    const client = await connect(p.port);
    for (const line of ['hello', 'simulated world', 'bye']) {
      client.write(`${line}\n`);
      expect(await readUntil(client, /\n/)).toBe(`${line.toUpperCase()}\n`);
    }
    client.destroy();
  });

  it('passes the scenario on the simulated network without faults, and fails it with short reads within 100 seeds', async () => {
    const { scenario } = await loadScenario(SCENARIO);
    const plugin = await prepareSimulation(PLUGIN);
    for (let seed = 1; seed <= 20; seed++) expect(runSimulation(plugin, { scenario, seed }).failure).toBeNull();
    let first: number | null = null;
    for (let seed = 1; seed <= 100 && first === null; seed++) {
      const r = runSimulation(plugin, { scenario, seed, faults: FAULTS });
      if (r.failure !== null) {
        first = seed;
        expect(r.failure).toMatch(/^the scenario failed: client #\d got "[^"]*\\n[^"]*", expected "HELLO\\nSIMULATED WORLD\\nBYE\\n"$/);
        expect(r.applied.some((f) => f.kind === 'short-read')).toBe(true);
      }
    }
    expect(first).not.toBeNull();
    console.log(`fragile-lines: first failing seed under ${FAULTS}: ${first}`);
  });

  it('wasmux test prints the failing seed, shrunk to the short reads it needs; both printed commands reproduce it', async () => {
    const all = await wasmux(['test', PLUGIN, '--seeds', '1..100', '--faults', FAULTS, '--scenario', SCENARIO], 60_000);
    expect(all.code, all.stderr).toBe(1);
    const first = /^seed (\d+): FAIL: (.*)$/m.exec(all.stdout);
    expect(first, all.stdout).not.toBeNull();
    const seed = first![1]!;
    const shrunk =
      /^seed (\d+) \(the first failure\), shrunk to faults (short-read#\d+=@[\d/]+(?:,short-read#\d+=@[\d/]+)*) \((\d+) of (\d+) faults kept, pinned to their steps\)$/m.exec(
        all.stdout,
      );
    expect(shrunk, all.stdout).not.toBeNull();
    expect(shrunk![1]).toBe(seed);
    const pinned = shrunk![2]!;
    expect(Number(shrunk![3])).toBeLessThanOrEqual(Number(shrunk![4]));
    const failure = /^failure: (.*)$/m.exec(all.stdout)![1]!;
    expect(failure).toMatch(/^the scenario failed: client #\d got /);
    expect(all.stdout).toMatch(/^faults applied \(\d+\):\n( {2}step \d+ short-read #\d: recv of \d+ shortened\n)+transcript:\n/m);
    const transcript = (out: string) => out.slice(out.indexOf('transcript:\n'), out.indexOf('reproduce:\n'));
    expect(transcript(all.stdout)).toContain(`FAILURE: ${failure}`);
    expect(all.stdout).toContain(
      `reproduce:\n  wasmux test ${PLUGIN} --seeds ${seed}..${seed} --faults ${pinned} --scenario ${SCENARIO}\n` +
        `the seed as first run:\n  wasmux test ${PLUGIN} --seeds ${seed}..${seed} --faults ${FAULTS} --scenario ${SCENARIO}\n`,
    );

    // The seed with the faults it first ran under: the same failure, the same report.
    const again = await wasmux(['test', PLUGIN, '--seeds', `${seed}..${seed}`, '--faults', FAULTS, '--scenario', SCENARIO], 30_000);
    expect(again.code, again.stderr).toBe(1);
    expect(again.stdout).toContain(`seed ${seed}: FAIL: ${first![2]}\n`);
    expect(again.stdout).toContain('wasmux test: 1 of 1 seeds failed');
    expect(transcript(again.stdout)).toBe(transcript(all.stdout));

    // The shrunk command: the shrunk failure, its transcript byte for byte.
    const small = await wasmux(['test', PLUGIN, '--seeds', `${seed}..${seed}`, '--faults', pinned, '--scenario', SCENARIO], 30_000);
    expect(small.code, small.stderr).toBe(1);
    expect(small.stdout).toContain(`seed ${seed}: FAIL: ${failure}\n`);
    expect(transcript(small.stdout)).toBe(transcript(all.stdout));
  });
});
