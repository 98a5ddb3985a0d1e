// The handover of a listening socket keeps its queue: connections whose
// handshake is done but that the old version never accepted (it is
// dist/test-plugins/never-accepts.wasm: it listens and waits) are accepted
// and served by the new version (echo) after a reload. Had the old
// instance's socket been closed with them queued, Linux would have reset
// every one (net.ipv4.tcp_migrate_req is 0 by default).
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { serve, type PluginServer } from '../../dist/host/index.js';

const QUEUED = 20;
const servers: PluginServer[] = [];
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => s.stop()));
});

/** Connects, writes `line`, and resolves with what comes back once it is the line, or how the connection failed. */
function queued(port: number, line: string): { connected: Promise<void>; answer: Promise<string> } {
  const s = connect(port, '127.0.0.1');
  sockets.push(s);
  let got = '';
  s.setEncoding('utf8');
  const connected = new Promise<void>((r) => s.once('connect', () => r()));
  const answer = new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve(`no answer within 10 s (got ${JSON.stringify(got)})`), 10_000);
    const done = (r: string) => {
      clearTimeout(timer);
      resolve(r);
    };
    s.on('connect', () => s.write(line));
    s.on('data', (d) => {
      got += d;
      if (got === line) done(got);
    });
    s.on('end', () => done(`ended after ${JSON.stringify(got)}`));
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
  return { connected, answer };
}

describe.each(['epoll', 'poll'])('connections queued on the old version across a reload, on %s', (backend) => {
  it(`all ${QUEUED} are accepted and served by the new version, none reset`, async () => {
    const server = await serve({
      plugin: 'dist/test-plugins/never-accepts.wasm',
      listen: ['127.0.0.1:0'],
      backend,
      logger: () => {},
    });
    servers.push(server);
    await server.ready;
    const port = server.addresses[0]!.port;
    const clients = Array.from({ length: QUEUED }, (_, i) => queued(port, `queued ${i}\n`));
    await Promise.all(clients.map((c) => c.connected)); // handshakes done: all queued on the old socket
    await new Promise((r) => setTimeout(r, 100));
    expect(server.stats()[0]!.accepted).toBe(0);

    const r = await server.reload({ plugin: 'dist/plugins/echo.wasm', drainTimeoutMs: 100 });
    expect(r.generation).toBe(1);
    expect(await Promise.all(clients.map((c) => c.answer))).toEqual(clients.map((_, i) => `queued ${i}\n`));
    expect(server.reloadStats().listenersHandedOver).toBe(1);
    await r.drained;
  });
});
