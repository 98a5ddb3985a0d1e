// `wasmux dev` keeps the version it serves when a change does not work: a
// syntax error prints asc's diagnostics and the old version answers, until
// the fix is reloaded; a version that fails at start is not reloaded.
import { describe, it, expect } from 'vitest';
import { editFile, lineProject, startDev, askOnce, LISTENING } from '../helpers/dev.js';

describe('wasmux dev: a change that does not work', () => {
  it('a syntax error: the diagnostics, the old version answers; fixing it reloads', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      const first = await dev.waitFor(LISTENING);
      const port = Number(first[1]);
      let from = dev.output().length;
      await editFile(p.index, 'c.write("PONG\\n");', 'c.write("PONG v2\\n";');
      await dev.waitFor(
        /wasmux dev: build failed after [\d.]+ s; still serving sha256 ([0-9a-f]{64}); waiting for a change\n/,
        20_000,
        from,
      );
      const failed = dev.output().slice(from);
      expect(failed).toContain(`still serving sha256 ${first[2]}`);
      expect(failed).toContain("ERROR TS1005: ')' expected.");
      expect(failed).toMatch(/\nassembly\/index\.ts:\d+:\d+: error TS1005: '\)' expected\.\n/);
      expect(failed).toContain('wasmux: error WASMUX_ERR_BUILD: asc failed: 1 parse error(s)');
      expect(await askOnce(port, 'PING')).toBe('PONG');

      from = dev.output().length;
      await editFile(p.index, 'c.write("PONG v2\\n";', 'c.write("PONG v2\\n");');
      const r = await dev.waitFor(/reloaded devplug: sha256 ([0-9a-f]{64}) -> ([0-9a-f]{64})/, 20_000, from);
      expect(r[1]).toBe(first[2]);
      expect(await askOnce(port, 'PING')).toBe('PONG v2');
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });

  it('a version that fails at start is not reloaded: why, and the old one serves on', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      const first = await dev.waitFor(LISTENING);
      const port = Number(first[1]);
      const from = dev.output().length;
      // It builds, and its run() returns an error at once.
      await editFile(
        p.index,
        'if (ctx.listen.length == 0)',
        'if (ctx.listen.length > 0) return "not today";\n  if (ctx.listen.length == 0)',
      );
      await dev.waitFor(
        /wasmux dev: not reloaded \(sha256 [0-9a-f]{64}\); still serving sha256 ([0-9a-f]{64}); waiting for a change\n/,
        30_000,
        from,
      );
      const out = dev.output().slice(from);
      expect(out).toContain(`still serving sha256 ${first[2]}`);
      expect(out).toMatch(/wasmux: error WASMUX_ERR_RELOAD: [^\n]*not today/);
      expect(await askOnce(port, 'PING')).toBe('PONG');
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });
});
