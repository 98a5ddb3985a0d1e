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

  it('and the contract (enums, flags, canonical-ABI layouts) for host and SDK is current too (build/contract.mjs --check)', () => {
    const r = spawnSync(process.execPath, ['build/contract.mjs', '--check'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('gives the layouts the canonical ABI gives the types the glue reads and writes', async () => {
    const { LAYOUT, ERROR_CODE_NAMES, READY_ERROR } = await import('../host/generated/contract.js');
    // Worked by hand from the canonical ABI's rules (the abi test then checks both sides against jco's glue):
    // event { token: u64, ready: flags<5> } is 8 + 1 padded to 8.
    expect(LAYOUT.event).toEqual({ size: 16, align: 8, token: 0, ready: 8 });
    // socket-address { address: variant { tuple<u8 x4>, tuple<u16 x8> }, port: u16 }: tag at 0, payload at 2, port at 18.
    expect(LAYOUT['socket-address']).toEqual({ size: 20, align: 2, address: 0, port: 18 });
    expect(LAYOUT['ip-address']).toEqual({ size: 18, align: 2, tag: 0, payload: 2 });
    // result<tuple<handle, socket-address>, error-code>: payload aligned to 4, the address after the handle.
    expect(LAYOUT['tcp.accept']).toEqual({ size: 28, align: 4, tag: 0, payload: 4, ok0: 4, ok1: 8 });
    expect(LAYOUT['tcp.recv']).toEqual({ size: 12, align: 4, tag: 0, payload: 4, okPtr: 4, okLen: 8 });
    expect(LAYOUT['poll.register']).toEqual({ size: 2, align: 1, tag: 0, payload: 1 });
    expect(LAYOUT.run).toEqual({ size: 12, align: 4, tag: 0, payload: 4, errPtr: 4, errLen: 8 });
    expect(ERROR_CODE_NAMES).toHaveLength(11);
    expect(READY_ERROR).toBe(16);
  });

  it('matches the imports and exports of the abi test plugin, which calls every function of the world', () => {
    const core = readCoreModule(readComponent(readFileSync(`${ROOT}/dist/test-plugins/abi.wasm`)).mainModule.bytes);
    const imported = Object.fromEntries(core.imports.map((i) => [`${i.module}#${i.name}`, i.signature]));
    const expected = Object.fromEntries(
      Object.entries(CORE_IMPORTS).flatMap(([m, fns]) => Object.entries(fns).map(([n, s]) => [`${m}#${n}`, s])),
    );
    expect(imported).toEqual(expected);
    for (const e of core.exports.filter((x) => x.kind === 'func')) expect(e.signature).toBe(CORE_EXPORTS[e.name]);
    expect(WORLD_INTERFACES).toEqual(expect.arrayContaining(Object.keys(CORE_IMPORTS)));
  });
});
