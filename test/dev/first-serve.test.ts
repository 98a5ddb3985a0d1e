// `wasmux dev` whose first version builds but cannot be served: one that
// fails at start is reported and dev waits for the fix; an address already
// in use ends dev (no edit fixes it), status 2, WASMUX_ERR_LISTEN.
import { describe, it, expect } from 'vitest';
import { createServer, type Server } from 'node:net';
import { editFile, lineProject, startDev, askOnce, LISTENING } from '../helpers/dev.js';

describe('wasmux dev: the first version served', () => {
  it('fails at start: why, nothing served, and the fix is served', async () => {
    const p = await lineProject();
    await editFile(p.index, 'if (ctx.listen.length == 0)', 'if (ctx.listen.length > 0) return "not today";\n  if (ctx.listen.length == 0)');
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      await dev.waitFor(/wasmux dev: not served; waiting for a change\n/, 30_000);
      expect(dev.output()).toMatch(/wasmux: error WASMUX_ERR_PLUGIN_FAILED: [^\n]*not today/);
      expect(dev.output()).not.toMatch(/listening on/);
      const from = dev.output().length;
      await editFile(p.index, 'if (ctx.listen.length > 0) return "not today";\n', '');
      const m = await dev.waitFor(LISTENING, 20_000, from);
      expect(await askOnce(Number(m[1]), 'PING')).toBe('PONG');
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });

  it('an address in use: WASMUX_ERR_LISTEN, status 2', async () => {
    const p = await lineProject();
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const { port } = taken.address() as { port: number };
    const dev = startDev(['--listen', `127.0.0.1:${port}`], p.dir);
    try {
      const end = await new Promise<number | null>((r) => dev.child.on('exit', (code) => r(code)));
      expect(end, dev.output()).toBe(2);
      expect(dev.output()).toContain(`wasmux: error WASMUX_ERR_LISTEN: cannot listen on 127.0.0.1:${port}`);
    } finally {
      await dev.stop('SIGKILL');
      taken.close();
      await p.remove();
    }
  });
});
