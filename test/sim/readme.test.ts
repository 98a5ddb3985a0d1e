// The README's "Test a plugin under simulation" example is real: its
// scenario, taken from the README as written, passes against fragile-lines
// without faults (small writes arrive whole) and fails under short reads;
// and simulate() is the package's own export.
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simulate, prepareSimulation } from '../../dist/host/index.js';
import { loadScenario } from '../../dist/host/sim/scenario-file.js';
import { testPlugin } from './helpers.js';

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'wasmux-sim-readme-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the README's simulation example", () => {
  it('runs as written: passes without faults, fails under short reads', async () => {
    const block = /```js\n(\/\/ lines\.mjs\n[\s\S]*?)```/.exec(README);
    expect(block, 'the README has the lines.mjs example').not.toBeNull();
    const file = join(dir, 'lines.mjs');
    writeFileSync(file, block![1]!);
    const { scenario, options } = await loadScenario(file);
    expect(options.listen).toEqual(['127.0.0.1:7000']);
    const plugin = await prepareSimulation(testPlugin('fragile-lines'));

    const clean = await simulate({ plugin, scenario, listen: options.listen, seed: 1 });
    expect(clean.failure, clean.transcript).toBeNull();
    expect(clean.transcript).toContain('plugin listens on 127.0.0.1:7000');

    const failures: number[] = [];
    for (let seed = 1; seed <= 20; seed++) {
      const r = await simulate({ plugin, scenario, listen: options.listen, seed, faults: 'short-read=0.5' });
      if (r.failure !== null) failures.push(seed);
    }
    expect(failures.length).toBeGreaterThan(0);
  });
});
