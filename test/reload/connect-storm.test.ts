// No reset under a connect storm: 16 clients open short connections to echo
// (2 workers) back to back, each writing a line and reading its echo, while
// the server reloads 10 times. Closing a listening socket of a SO_REUSEPORT
// group resets the connections queued on it; a reload hands every socket
// to the next version instead, so not one connection is reset or refused.
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { serve, type PluginServer } from '../../dist/host/index.js';

const RELOADS = 10;
const CLIENTS = 16;
const servers: PluginServer[] = [];
afterAll(() => Promise.all(servers.map((s) => s.stop())));

/** One short connection: connect, write, read the echo, close. Resolves with the error code, or 'ok'. */
function once(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve('no echo within 5 s');
    }, 5000);
    const done = (r: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    s.on('connect', () => s.write('ping\n'));
    s.setEncoding('utf8');
    s.on('data', (d) => {
      got += d;
      if (got === 'ping\n') done('ok');
    });
    s.on('end', () => done(got === 'ping\n' ? 'ok' : `ended after ${JSON.stringify(got)}`));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

describe.each(['epoll', 'poll'])('a connect storm through 10 reloads on %s', (backend) => {
  it('no connection reset or refused', { timeout: 60_000 }, async () => {
    const server = await serve({
      plugin: 'dist/plugins/echo.wasm',
      listen: ['127.0.0.1:0'],
      workers: 2,
      backend,
      logger: () => {},
    });
    servers.push(server);
    await server.ready;
    const port = server.addresses[0]!.port;
    const outcomes = new Map<string, number>();
    let running = true;
    const clients = Array.from({ length: CLIENTS }, async () => {
      // Bounded: at most 100,000 connections per client, and only while the reloads last.
      for (let i = 0; running && i < 100_000; i++) {
        const r = await once(port);
        outcomes.set(r, (outcomes.get(r) ?? 0) + 1);
      }
    });
    await new Promise((r) => setTimeout(r, 200));
    for (let n = 1; n <= RELOADS; n++) {
      const r = await server.reload();
      expect(r.generation).toBe(n);
      await new Promise((r) => setTimeout(r, 100));
    }
    running = false;
    await Promise.all(clients);
    console.log(`${backend}: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    expect(outcomes.get('ok') ?? 0).toBeGreaterThan(500);
    expect(Object.fromEntries([...outcomes].filter(([k]) => k !== 'ok'))).toEqual({});
    // Each reload handed each instance's listening socket to the new instance of its index.
    expect(server.reloadStats()).toMatchObject({ generation: RELOADS, done: RELOADS, failed: 0, listenersHandedOver: RELOADS * 2 });
  });
});
