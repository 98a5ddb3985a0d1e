// A plugin connecting where its policy allows (assembly/test-plugins/
// connect-probe with a rule for a local test server's port): the connection
// works both ways, through the API's policy and through `wasmux run
// --allow-connect`, with no denial logged. An echo plugin served beside it
// keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import net from 'node:net';
import { Neighbour, cleanUp, fdBaseline, host, runPlugins, settleFds, testPlugin, waitFor } from '../helpers/hostile.js';

afterEach(cleanUp);

/** A local server that answers "pong <n>" to the first line of each connection. */
async function pongServer(): Promise<{ port: number; got: string[]; close: () => Promise<void> }> {
  const got: string[] = [];
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    let text = '';
    s.on('data', (d) => {
      text += d.toString();
      if (text.includes('\n')) {
        got.push(text);
        s.write(`pong ${got.length}\n`);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    got,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  };
}

describe('a plugin connecting where its policy allows', () => {
  it('reaches the allowed address and gets its reply; nothing is denied; its neighbour keeps echoing', async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const srv = await pongServer();
    try {
      const p = await host(testPlugin('connect-probe'), {
        config: `127.0.0.1:${srv.port}`,
        policy: { connect: [`127.0.0.1:${srv.port}`] },
      });
      await p.line(/^probes done$/);
      expect(p.lines(/^connect /).map((l) => l.message)).toEqual([`connect 127.0.0.1:${srv.port} -> reply pong 1`]);
      expect(srv.got).toEqual(['ping from plugin\n']);
      expect(p.count(/^denied: /)).toBe(0);
      expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
      expect(p.server.exitReasons()).toEqual([null]);
    } finally {
      await srv.close();
    }
    expect(await neighbour.finish()).toBeGreaterThan(2);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);

  it('works through `wasmux run --allow-connect 127.0.0.1:<port>`', async () => {
    const srv = await pongServer();
    try {
      const run = await runPlugins(
        [
          'dist/test-plugins/connect-probe.wasm',
          '--listen',
          '127.0.0.1:0',
          '--config',
          `127.0.0.1:${srv.port}`,
          '--allow-connect',
          `127.0.0.1:${srv.port}`,
        ],
        1,
      );
      const reply = await run.errLine(/^connect-probe\[0\] guest info: connect /);
      expect(reply.text).toBe(`connect-probe[0] guest info: connect 127.0.0.1:${srv.port} -> reply pong 1`);
      expect(await waitFor(() => srv.got.length === 1, 2000)).toBe(true);
      expect(run.stderr.some((l) => /denied/.test(l.text))).toBe(false);
      const end = await run.stop('SIGTERM');
      expect(end.code).toBe(0);
    } finally {
      await srv.close();
    }
  }, 30_000);
});
