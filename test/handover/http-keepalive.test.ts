// Live handover of HTTP keep-alive connections (wit/handover.wit, the SDK's
// HTTP server): a connection idle between requests across a reload is
// served by the new version on the same socket (no reconnect: the same
// local port, no end, no error); a new version that does not take
// connections (handover=0) leaves them to drain as before (Connection:
// close, then a clean end). On epoll and poll(2).
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { serve, type LogEntry, type PluginServer } from '../../dist/host/index.js';

const HTTP = 'dist/plugins/http.wasm';
const APP = 'dist/test-plugins/http-app.wasm'; // answers GET /status/<code> with "status <code>"

const servers: PluginServer[] = [];
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => s.stop()));
});

class Client {
  readonly sock: Socket;
  private text = '';
  error: string | null = null;
  ended = false;
  constructor(port: number) {
    this.sock = connect(port, '127.0.0.1');
    sockets.push(this.sock);
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d: string) => (this.text += d));
    this.sock.on('error', (e: NodeJS.ErrnoException) => (this.error = e.code ?? e.message));
    this.sock.on('end', () => (this.ended = true));
  }
  async request(path: string): Promise<string> {
    this.text = '';
    this.sock.write(`GET ${path} HTTP/1.1\r\nHost: wasmux\r\n\r\n`);
    const deadline = performance.now() + 5000;
    for (;;) {
      const head = this.text.indexOf('\r\n\r\n');
      const length = /\r\nContent-Length: (\d+)\r\n/i.exec(this.text);
      if (head >= 0 && length && this.text.length >= head + 4 + Number(length[1])) return this.text;
      if (performance.now() > deadline) throw new Error(`no whole response within 5 s: ${JSON.stringify(this.text)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

describe.each(['epoll', 'poll'] as const)('HTTP keep-alive connections across a reload, on %s', (backend) => {
  async function start(): Promise<{ server: PluginServer; port: number; logs: LogEntry[] }> {
    const logs: LogEntry[] = [];
    const server = await serve({ plugin: HTTP, listen: ['127.0.0.1:0'], workers: 1, backend, logger: (e) => void logs.push(e) });
    servers.push(server);
    await server.ready;
    return { server, port: server.addresses[0]!.port, logs };
  }

  it('an idle one is served by the new version on the same socket', { timeout: 30_000 }, async () => {
    const { server, port, logs } = await start();
    const clients = [new Client(port), new Client(port), new Client(port)];
    for (const c of clients) expect(await c.request('/')).toMatch(/^HTTP\/1\.1 200 /);
    const ports = clients.map((c) => c.sock.localPort);
    expect(await clients[0]!.request('/status/201')).toMatch(/^HTTP\/1\.1 404 /); // the old version has no such route

    const r = await server.reload({ plugin: APP });
    await r.drained;
    for (const c of clients) {
      const res = await c.request('/status/201');
      expect(res).toMatch(/^HTTP\/1\.1 201 /);
      expect(res).toMatch(/\r\n\r\nstatus 201\n$/);
      expect(res).not.toMatch(/Connection: close/i);
    }
    expect(clients.map((c) => c.sock.localPort)).toEqual(ports);
    expect(clients.map((c) => [c.error, c.ended])).toEqual(clients.map(() => [null, false]));
    expect(server.reloadStats()).toMatchObject({ handoversDone: 3, handoversFailed: 0 });
    expect(server.reloadStats().drained[0]).toMatchObject({ connections: 3, handedOver: 3, handoverFailed: 0, cut: 0 });
    expect(
      logs.some((e) =>
        /reload: version 0 ended; 0 of its 3 connection\(s\) finished, 3 moved to version 1 \(0 handover\(s\) failed\)/.test(e.message),
      ),
    ).toBe(true);
  });

  it('a new version that takes none (handover=0): they drain as before', { timeout: 30_000 }, async () => {
    const { server, port } = await start();
    const c = new Client(port);
    expect(await c.request('/')).toMatch(/^HTTP\/1\.1 200 /);
    const r = await server.reload({ plugin: APP, config: 'handover=0' });
    // Idle: closed cleanly by the draining old version after about a second.
    const deadline = performance.now() + 5000;
    while (!c.ended && performance.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    expect([c.ended, c.error]).toEqual([true, null]);
    await r.drained;
    expect(server.reloadStats()).toMatchObject({ handoversDone: 0, handoversFailed: 0 });
    expect(server.reloadStats().drained[0]).toMatchObject({ connections: 1, handedOver: 0, cut: 0 });
  });
});
