// On a stop (PluginServer.drain, SIGTERM in `wasmux run`), connections
// queued in the kernel on a listener (handshake done, not accepted yet) are
// not reset: before closing the listener the host takes them, reports the
// listener readable before its hang-up, and the guest accepts them from the
// drained listener (dist/test-plugins/accepts-at-stop.wasm accepts nothing
// before the hang-up, so all of them are queued when the stop comes).
// Closing the listener with them queued would reset every one, and a proxy
// in front would answer 502 for requests it had already sent. With
// --proxy-protocol their headers are read at the stop too.
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { serve, type PluginServer } from '../../dist/host/index.js';

const QUEUED = 20;
const sockets: Socket[] = [];
const servers: PluginServer[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => s.stop()));
});

/** Connects, writes `first` then `line`, and resolves with everything received until the server's end, or how it failed. */
function client(port: number, first: string, line: string): { connected: Promise<void>; answer: Promise<string> } {
  const s = connect(port, '127.0.0.1');
  sockets.push(s);
  let got = '';
  s.setEncoding('utf8');
  const connected = new Promise<void>((r) => s.once('connect', () => r()));
  const answer = new Promise<string>((resolve) => {
    const timer = setTimeout(() => resolve(`no end within 10 s (got ${JSON.stringify(got)})`), 10_000);
    const done = (r: string) => {
      clearTimeout(timer);
      resolve(r);
    };
    s.on('connect', () => s.write(first + line));
    s.on('data', (d) => (got += d));
    s.on('end', () => done(got));
    s.on('error', (e: NodeJS.ErrnoException) => done(`${e.code ?? e.message} after ${JSON.stringify(got)}`));
  });
  return { connected, answer };
}

describe.each([
  ['epoll', false],
  ['poll', false],
  ['epoll', true],
])('connections queued in the kernel at a stop, on %s (PROXY protocol: %s)', (backend, proxy) => {
  it(`all ${QUEUED} are accepted by the draining guest and answered, none reset`, async () => {
    const lines: string[] = [];
    const server = await serve({
      plugin: 'dist/test-plugins/accepts-at-stop.wasm',
      listen: ['127.0.0.1:0'],
      backend,
      policy: proxy ? { proxyProtocol: true } : {},
      logger: (e) => void lines.push(e.message),
    });
    servers.push(server);
    await server.ready;
    const port = server.addresses[0]!.port;
    const header = (i: number) => (proxy ? `PROXY TCP4 192.0.2.${i + 1} 127.0.0.1 4000 ${port}\r\n` : '');
    const clients = Array.from({ length: QUEUED }, (_, i) => client(port, header(i), `line ${i}\n`));
    await Promise.all(clients.map((c) => c.connected));
    await new Promise((r) => setTimeout(r, 100)); // their bytes are in
    expect(server.stats()[0]!.accepted).toBe(0);

    await server.drain(5_000);
    expect(await Promise.all(clients.map((c) => c.answer))).toEqual(clients.map((_, i) => `served line ${i}\n`));
    expect(lines.join('\n')).toContain('readable before hang-up: yes');
    expect(lines.join('\n')).toContain(`accepted ${QUEUED} at the hang-up`);
    expect(server.stats()[0]!.accepted).toBe(QUEUED);
  });
});

describe('a PROXY header half-sent when a stop begins, on epoll', () => {
  it('is read to its end during the drain and the connection handed to the draining guest, not closed', async () => {
    const lines: string[] = [];
    const server = await serve({
      plugin: 'dist/test-plugins/accepts-at-stop.wasm',
      listen: ['127.0.0.1:0'],
      backend: 'epoll',
      policy: { proxyProtocol: true },
      logger: (e) => void lines.push(e.message),
    });
    servers.push(server);
    await server.ready;
    const port = server.addresses[0]!.port;
    const header = `PROXY TCP4 192.0.2.9 127.0.0.1 4000 ${port}\r\n`;
    const s = connect(port, '127.0.0.1');
    sockets.push(s);
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (got += d));
    s.on('error', () => {});
    const ended = new Promise<void>((r) => s.on('close', () => r()));
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write(header.slice(0, 10));
    await new Promise((r) => setTimeout(r, 100));
    const drained = server.drain(5_000);
    await new Promise((r) => setTimeout(r, 100)); // the listener is closed, the header still half
    s.write(`${header.slice(10)}late line\n`);
    await ended;
    await drained;
    expect(got).toBe('served late line\n');
    expect(lines.join('\n')).toContain('accepted 0 at the hang-up');
    expect(server.stats()[0]!.accepted).toBe(1);
  });
});
