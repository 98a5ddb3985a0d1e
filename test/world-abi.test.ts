// host/generated/world-abi.ts is generated from wit/ (build/world-abi.mjs):
// it must be current, and it must describe what the SDK's bindings and the
// host's glue implement (the abi test plugin calls every import through both).
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { CORE_EXPORTS, CORE_IMPORTS, WORLD_INTERFACES } from '../host/generated/world-abi.js';
import { readComponent } from '../host/loader/component.js';
import { readCoreModule } from '../host/loader/core-module.js';
import { ROOT } from './helpers/cli.js';

describe('the world ABI table generated from wit/', () => {
  it('is current (build/world-abi.mjs --check)', () => {
    const r = spawnSync(process.execPath, ['build/world-abi.mjs', '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('matches the imports and exports of the abi test plugin, which calls every function of the world', () => {
    const core = readCoreModule(readComponent(readFileSync(`${ROOT}/dist/test-plugins/abi.wasm`)).mainModule.bytes);
    const imported = Object.fromEntries(core.imports.map((i) => [`${i.module}#${i.name}`, i.signature]));
    const expected = Object.fromEntries(Object.entries(CORE_IMPORTS).flatMap(([m, fns]) => Object.entries(fns).map(([n, s]) => [`${m}#${n}`, s])));
    expect(imported).toEqual(expected);
    for (const e of core.exports.filter((x) => x.kind === 'func')) expect(e.signature).toBe(CORE_EXPORTS[e.name]);
    expect(WORLD_INTERFACES).toEqual(expect.arrayContaining(Object.keys(CORE_IMPORTS)));
  });
});
