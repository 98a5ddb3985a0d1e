// The plugin build: a standard component that jco validates, importing only
// the wasmux world's interfaces, and the same bytes from the same sources.
import { describe, it, expect } from 'vitest';
import { readFile, mkdtemp, rm, cp, symlink } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { componentWit } from '@bytecodealliance/jco';
import { ROOT } from './helpers/cli.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('plugin build', () => {
  it('echo is a component jco reads, whose world imports only wasmux interfaces and exports run', async () => {
    const wit = await componentWit(await readFile(join(ROOT, 'dist/plugins/echo.wasm')));
    const imports = [...wit.matchAll(/^\s*import ([^;]+);/gm)].map((m) => m[1]);
    expect(imports.length).toBeGreaterThan(0);
    for (const i of imports) expect(i).toMatch(/^wasmux:plugin\/(poll|tcp|log|types)@0\.1\.0$/);
    expect(wit).toMatch(/export run: func\(ctx: context\) -> result<_, string>;/);
  });

  it('is reproducible: a build in a fresh copy of the sources gives identical bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wasmux-build-'));
    try {
      // dist/host too: build/plugins.mjs builds through the host's build module.
      for (const part of ['assembly', 'wit', 'build', 'package.json', 'asconfig.json', 'dist/host']) {
        await cp(join(ROOT, part), join(dir, part), { recursive: true, verbatimSymlinks: true });
      }
      // Same toolchain, another directory: no path or time may leak into the output.
      await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      const r = spawnSync(process.execPath, ['build/plugins.mjs', 'echo'], { cwd: dir, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const fresh = await readFile(join(dir, 'dist/plugins/echo.wasm'));
      const ours = await readFile(join(ROOT, 'dist/plugins/echo.wasm'));
      expect(sha(fresh)).toBe(sha(ours));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
