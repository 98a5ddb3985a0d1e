// Draining a replaced version's keep-alive connections, through the CLI:
// a client that sends its next request on a connection of the old version
// gets its response, saying `Connection: close`, then a clean close (no
// reset); an idle keep-alive connection is closed cleanly too, well before
// the drain timeout; the log counts both as drained. After reloads, the
// wasmux process holds exactly the descriptors it held before: each old
// instance closed its copy of the listening sockets, nothing leaked.
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { backendTargets, startServer, stopAll, type WasmuxProcess } from '../helpers/backends.js';

afterAll(stopAll);

const REQUEST = 'GET / HTTP/1.1\r\nHost: wasmux\r\n\r\n';

/** The client side of one connection: its responses, whether it ended cleanly or with an error. */
class Client {
  readonly sock: Socket;
  private text = '';
  error: string | null = null;
  readonly ended: Promise<void>;
  constructor(port: number) {
    this.sock = connect(port, '127.0.0.1');
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d: string) => (this.text += d));
    this.sock.on('error', (e: NodeJS.ErrnoException) => (this.error = e.code ?? e.message));
    this.ended = new Promise((r) => this.sock.once('end', () => r()));
  }
  /** Sends a request and resolves with its whole response (head and body, by Content-Length). */
  async request(): Promise<string> {
    this.text = '';
    this.sock.write(REQUEST);
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

async function settleFds(server: WasmuxProcess, want: number): Promise<number> {
  const deadline = performance.now() + 5000;
  while (server.fdCount() !== want && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return server.fdCount();
}

const targets = backendTargets().filter((t) => t.name === 'epoll' || t.name === 'poll');

describe.each(targets)('draining keep-alive connections on a reload, on $label', (target) => {
  it.skipIf(target.skipReason !== null)('Connection: close, a clean close, no descriptor left behind', { timeout: 60_000 }, async () => {
    const server = await startServer(target, 'dist/plugins/http.wasm', [
      '--workers',
      '2',
      '--drain-timeout',
      '8000',
      '--config',
      'handover=0',
    ]);
    await new Promise((r) => setTimeout(r, 200));
    const fds0 = server.fdCount();

    const busy = new Client(server.port);
    const idle = new Client(server.port);
    expect(await busy.request()).not.toMatch(/Connection: close/i);
    expect(await idle.request()).not.toMatch(/Connection: close/i);

    server.child.kill('SIGHUP');
    await server.waitFor(/wasmux: http reloaded: version 1 /, 'stderr', 15_000);
    const t = performance.now();
    // The next request on a connection of the old version: answered, and the connection ends with it.
    const last = await busy.request();
    expect(last).toMatch(/^HTTP\/1\.1 200 /);
    expect(last).toMatch(/\r\nConnection: close\r\n/i);
    await busy.ended;
    // The idle one: closed by the draining server after about a second of silence, not at the drain timeout (8 s).
    await idle.ended;
    expect(performance.now() - t).toBeLessThan(4000);
    expect([busy.error, idle.error]).toEqual([null, null]);
    await server.waitFor(/reload: version 0 ended; 2 of its 2 connection\(s\) finished\n/, 'stderr', 10_000);

    // More reloads, then the descriptor count is back where it was.
    for (let n = 2; n <= 6; n++) {
      server.child.kill('SIGHUP');
      await server.waitFor(new RegExp(`reload: version ${n - 1} ended`), 'stderr', 15_000);
    }
    expect(await settleFds(server, fds0)).toBe(fds0);
    const fresh = new Client(server.port);
    expect(await fresh.request()).toMatch(/^HTTP\/1\.1 200 /);
    fresh.sock.destroy();
    const end = await server.stop(target.stopSignal, 10_000);
    expect(end.code).toBe(0);
  });
});
