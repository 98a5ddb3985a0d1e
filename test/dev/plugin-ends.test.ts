// `wasmux dev` whose plugin ends by itself (its run returns ok): dev says
// so, keeps watching, and serves the next version again, on the same port.
import { describe, it, expect } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { editFile, lineProject, startDev, LISTENING } from '../helpers/dev.js';

// Listens, waits for one connection, logs its version and returns ok.
const ONE_SHOT = `import { Context, Events, Interest, Poll, TcpListener, info, serve } from "wasmux";
export * from "wasmux/entry";
const VERSION = "one";
serve((ctx: Context): string | null => {
  const l = TcpListener.bind(ctx.listen[0]);
  if (l === null) return "bind failed";
  const poll = new Poll();
  poll.register(l, 1, Interest.READABLE);
  const events = new Events(4);
  poll.poll(events, -1);
  info("version " + VERSION + " saw a connection; returning");
  return null;
});
`;

/** Connects and resolves once the connection ends (reset: it was never accepted). */
const knock = (port: number) =>
  new Promise<void>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => resolve());
    s.resume();
  });

describe('wasmux dev: a plugin that ends by itself', () => {
  it('is reported, and served again at the next change on the same port', async () => {
    const p = await lineProject();
    await writeFile(p.index, ONE_SHOT);
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      const first = await dev.waitFor(LISTENING);
      const port = Number(first[1]);
      await knock(port);
      await dev.waitFor(/wasmux dev: devplug ended; serving it again at the next change\n/);
      expect(dev.output()).toContain('version one saw a connection; returning');

      const from = dev.output().length;
      await editFile(p.index, 'const VERSION = "one";', 'const VERSION = "two";');
      const again = await dev.waitFor(LISTENING, 20_000, from);
      expect(Number(again[1])).toBe(port);
      expect(again[2]).not.toBe(first[2]);
      await knock(port);
      await dev.waitFor(/version two saw a connection; returning/, 10_000, from);
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });
});
