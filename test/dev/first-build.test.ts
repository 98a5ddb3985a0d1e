// `wasmux dev` whose first build fails: asc's diagnostics are printed as
// `wasmux build` prints them, nothing is served, dev keeps watching; the
// fix is built and served.
import { describe, it, expect } from 'vitest';
import { editFile, lineProject, startDev, askOnce, LISTENING } from '../helpers/dev.js';

describe('wasmux dev: a first build that fails', () => {
  it('prints the diagnostics, serves nothing, and serves the fix once it is saved', async () => {
    const p = await lineProject();
    // A type error before dev starts.
    await editFile(p.index, 'c.write("PONG\\n");', 'const n: i32 = "PONG"; c.write("PONG\\n");');
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      await dev.waitFor(/wasmux dev: build failed after [\d.]+ s; nothing served yet; waiting for a change\n/);
      const out = dev.output();
      expect(out).toContain("ERROR TS2322: Type '~lib/string/String' is not assignable to type 'i32'.");
      expect(out).toMatch(/\nassembly\/index\.ts:\d+:\d+: error TS2322: /);
      expect(out).toContain('wasmux: error WASMUX_ERR_BUILD: asc failed: 1 compile error');
      expect(out).not.toMatch(/listening on/);
      expect(dev.exited()).toBe(false);

      const from = dev.output().length;
      await editFile(p.index, 'const n: i32 = "PONG"; ', '');
      await dev.waitFor(/wasmux dev: changed assembly\/index\.ts; building\n/, 20_000, from);
      const m = await dev.waitFor(LISTENING, 20_000, from);
      expect(await askOnce(Number(m[1]), 'PING')).toBe('PONG');
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });
});
