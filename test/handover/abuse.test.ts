// A hostile guest's handover.give (test-plugins/handover-abuse): a handle
// never issued, its own listener, a connection given twice, a state over
// handover-state-bytes, adopt on a stream and on a handle it gave away, a
// state list past the end of its memory. Each gets
// its error code, the last a trap of that instance alone; the connection
// it did give is served by the new version on the same socket, the one it
// could not give is closed with its instance, the new version serves
// fresh connections, and no descriptor is left behind. On epoll and poll(2).
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { serve, type LogEntry, type PluginServer } from '../../dist/host/index.js';
import { openFds } from '../helpers/server.js';

const ABUSE = 'dist/test-plugins/handover-abuse.wasm';
const HTTP = 'dist/plugins/http.wasm';
const BOUND = 1024;

const servers: PluginServer[] = [];
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => s.stop()));
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: () => string, ok: () => boolean, ms = 5000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!ok()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what()}`);
    await sleep(10);
  }
}

function client(port: number) {
  const sock = connect(port, '127.0.0.1');
  sockets.push(sock);
  const c = { sock, text: '', ended: false, error: null as string | null };
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => (c.text += d));
  sock.on('end', () => (c.ended = true));
  sock.on('error', (e: NodeJS.ErrnoException) => (c.error = e.code ?? e.message));
  return c;
}

describe.each(['epoll', 'poll'] as const)('a hostile handover.give, on %s', (backend) => {
  it('error codes, a trap of its own instance, the given connection moved, no descriptor leaked', { timeout: 30_000 }, async () => {
    const fds0 = openFds();
    const logs: LogEntry[] = [];
    const server = await serve({
      plugin: ABUSE,
      listen: ['127.0.0.1:0'],
      workers: 1,
      backend,
      config: `bound=${BOUND}`,
      policy: { handoverStateBytes: BOUND, maxConnections: 1024 },
      logger: (e) => void logs.push(e),
    });
    servers.push(server);
    await server.ready;
    const port = server.addresses[0]!.port;
    const lines = () => logs.map((e) => e.message);

    const first = client(port);
    const second = client(port);
    await until(
      () => `2 connections accepted (${server.stats()[0]!.open})`,
      () => server.stats()[0]!.open === 2,
    );

    const r = await server.reload({ plugin: HTTP, config: '' });
    await r.drained;
    await until(
      () => lines().join('\n'),
      () => lines().includes('give out of bounds'),
    );
    const said = lines().filter((m) => m.startsWith('give ') || m.startsWith('adopt '));
    expect(said).toEqual([
      'give never-issued -> err bad-handle',
      'give listener -> err bad-handle',
      'give first -> ok',
      'give first again -> err bad-handle',
      'give second over the bound -> err limit',
      'adopt on a stream -> err bad-handle',
      'adopt on a given handle -> err bad-handle',
      'give out of bounds',
    ]);
    expect(lines().some((m) => m.startsWith('still here'))).toBe(false);
    expect(logs.some((e) => e.origin === 'host' && /^trapped while draining: out-of-bounds memory access/.test(e.message))).toBe(true);
    expect(logs.some((e) => /handover: a state of 1025 bytes is over handover-state-bytes \(1024\)/.test(e.message))).toBe(true);

    // The connection given is the new version's: same socket, an HTTP answer.
    first.sock.write('GET / HTTP/1.1\r\nHost: wasmux\r\n\r\n');
    await until(
      () => JSON.stringify(first.text),
      () => /^HTTP\/1\.1 200 /.test(first.text),
    );
    expect([first.ended, first.error]).toEqual([false, null]);
    // The one it could not give ended with its instance.
    await until(
      () => 'the second connection ends',
      () => second.ended || second.error !== null,
    );
    // The new version serves fresh connections too.
    const fresh = client(port);
    fresh.sock.write('GET / HTTP/1.1\r\nHost: wasmux\r\nConnection: close\r\n\r\n');
    await until(
      () => JSON.stringify(fresh.text),
      () => fresh.ended && /^HTTP\/1\.1 200 /.test(fresh.text),
    );

    expect(server.reloadStats()).toMatchObject({ handoversDone: 1, handoversFailed: 1 });
    expect(server.reloadStats().drained[0]).toMatchObject({ handedOver: 1, handoverFailed: 1 });

    for (const s of [first.sock, second.sock, fresh.sock]) s.destroy();
    await server.stop();
    await until(
      () => `descriptors back to ${fds0} (${openFds()})`,
      () => openFds() === fds0,
    );
  });
});
