// The policy's knobs are one table (host/sandbox/policy.ts POLICY_KNOBS):
// every knob reaches the policy file, its flag, `run --help`, the limits an
// instance's thread gets, and the README's table, from that table alone.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  INSTANCE_KNOBS,
  KNOB_NAMES,
  POLICY_DEFAULTS,
  POLICY_KNOBS,
  buildPolicy,
  describePolicy,
  instanceKnobs,
} from '../dist/host/sandbox/policy.js';
import { ROOT, wasmux } from './helpers/cli.js';

describe('the table of policy knobs', () => {
  it('gives every knob a flag, a range holding its default, and text', () => {
    const flags = new Set<string>();
    for (const k of KNOB_NAMES) {
      const knob = POLICY_KNOBS[k];
      expect(knob.min, k).toBeLessThanOrEqual(knob.default);
      expect(knob.default, k).toBeLessThanOrEqual(knob.max);
      expect(knob.flag, k).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(flags.has(knob.flag), `${k}: flag --${knob.flag} used twice`).toBe(false);
      flags.add(knob.flag);
      expect(knob.help.length, k).toBeGreaterThan(10);
      expect(knob.doc.length, k).toBeGreaterThan(10);
      expect(POLICY_DEFAULTS[k]).toBe(knob.default);
    }
  });

  it('parses every knob from a policy file, refuses it out of range by its key, and describes it back', () => {
    for (const k of KNOB_NAMES) {
      const { min, max } = POLICY_KNOBS[k];
      expect(describePolicy(buildPolicy([{ where: 'p', input: { [k]: max } }]))[k]).toBe(max);
      expect(describePolicy(buildPolicy([{ where: 'p', input: { [k]: min } }]))[k]).toBe(min);
      expect(() => buildPolicy([{ where: 'p', input: { [k]: max + 1 } }])).toThrow(
        `p: ${k} must be a whole number from ${min} to ${max} (got ${max + 1})`,
      );
    }
    // What describePolicy writes is a policy file that builds the same policy.
    const p = buildPolicy([{ where: 'p', input: { listen: ['127.0.0.1:0'], connect: ['10.0.0.0/8:80-443'], maxConnections: 9 } }]);
    expect(describePolicy(buildPolicy([{ where: 'again', input: describePolicy(p) }]))).toEqual(describePolicy(p));
  });

  it('hands an instance exactly its instance knobs', () => {
    expect([...INSTANCE_KNOBS].sort()).toEqual(
      KNOB_NAMES.filter((k) => POLICY_KNOBS[k].applies === 'instance' || k === 'maxMemoryMiB').sort(),
    );
    const input = Object.fromEntries(KNOB_NAMES.map((k) => [k, POLICY_KNOBS[k].min]));
    const limits = instanceKnobs(buildPolicy([{ where: 'p', input }]));
    expect(Object.keys(limits).sort()).toEqual([...INSTANCE_KNOBS].sort());
    for (const k of INSTANCE_KNOBS) expect(limits[k]).toBe(POLICY_KNOBS[k].min);
  });

  it('shows every knob in run --help with its default and range', async () => {
    const r = await wasmux(['run', '--help']);
    expect(r.code).toBe(0);
    for (const k of KNOB_NAMES) {
      const knob = POLICY_KNOBS[k];
      const at = r.stdout.indexOf(`--${knob.flag} ${knob.arg}`);
      expect(at, `--${knob.flag} in --help`).toBeGreaterThan(0);
      // The option's text runs to the next option.
      const text = r.stdout
        .slice(at)
        .split(/\n {2}-/)[0]!
        .replace(/\s+/g, ' ');
      expect(text).toContain(`(${knob.min}..${knob.max})`);
      expect(text).toContain(`[default: ${knob.default}]`);
    }
  });

  it('wires every flag to its knob: an out-of-range value is refused naming the key', async () => {
    const results = await Promise.all(
      KNOB_NAMES.map((k) =>
        wasmux(['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', `--${POLICY_KNOBS[k].flag}`, String(POLICY_KNOBS[k].max + 1)]),
      ),
    );
    KNOB_NAMES.forEach((k, i) => {
      const r = results[i]!;
      expect(r.code, `--${POLICY_KNOBS[k].flag}`).toBe(2);
      expect(r.stderr).toContain(`WASMUX_ERR_BAD_POLICY`);
      expect(r.stderr).toContain(`command line: ${k} must be a whole number from ${POLICY_KNOBS[k].min} to ${POLICY_KNOBS[k].max}`);
    });
  });

  it("is the README's policy table (build/policy-table.mjs --check)", () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'build/policy-table.mjs'), '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
