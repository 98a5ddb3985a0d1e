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

  it('wasmux test prints the failing seed; rerun with --seeds N..N, that seed fails the same way', async () => {
    const all = await wasmux(['test', PLUGIN, '--seeds', '1..100', '--faults', FAULTS, '--scenario', SCENARIO], 60_000);
    expect(all.code, all.stderr).toBe(1);
    const first = /^seed (\d+): FAIL: (.*)$/m.exec(all.stdout);
    expect(first, all.stdout).not.toBeNull();
    const seed = first![1]!;
    expect(all.stdout).toContain(`seed ${seed} (the first failure), shrunk to faults ${FAULTS}`);
    expect(all.stdout).toMatch(/^faults applied \(\d+\):\n {2}step \d+ short-read #\d: recv of \d+ shortened$/m);
    expect(all.stdout).toContain('transcript:\n');
    const repro = /^reproduce:\n {2}(.*)$/m.exec(all.stdout);
    expect(repro![1]).toBe(`wasmux test ${PLUGIN} --seeds ${seed}..${seed} --faults ${FAULTS} --scenario ${SCENARIO}`);

    const again = await wasmux(['test', PLUGIN, '--seeds', `${seed}..${seed}`, '--faults', FAULTS, '--scenario', SCENARIO], 30_000);
    expect(again.code, again.stderr).toBe(1);
    expect(again.stdout).toContain(`seed ${seed}: FAIL: ${first![2]}`);
    expect(again.stdout).toContain('wasmux test: 1 of 1 seeds failed');
    // The same transcript, byte for byte, as in the first run's report.
    const transcript = (out: string) => out.slice(out.indexOf('transcript:\n'), out.indexOf('reproduce:\n'));
    expect(transcript(again.stdout)).toBe(transcript(all.stdout));
  });
});
