// Outbound connections and the host's own lines: the connect-probe test
// plugin (assembly/test-plugins/connect-probe), recorded, connects where its
// policy allows (a local server that answers "pong") and where it does not
// (the host logs the denial). The replay, offline, has the outbound
// connection with what the plugin sent on it, and prints every line the run
// printed for the instance, the host's denial in its place among the
// plugin's own.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { wasmux } from '../helpers/cli.js';
import { waitFor } from '../helpers/server.js';
import { cleanUp, instanceLines, noEpoll, record, replayJson, sentBytes, traceDir } from '../helpers/trace.js';

let server: net.Server | null = null;
afterEach(async () => {
  await cleanUp();
  if (server) await new Promise((r) => server!.close(r));
  server = null;
});

describe.skipIf(noEpoll !== null)(`record and replay: outbound connections${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('replays the connect, its bytes, and the host line of the denied one', async () => {
    server = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => s.end('pong\n'));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const file = `${traceDir()}/probe.trace`;
    const run = await record('dist/test-plugins/connect-probe.wasm', file, [
      '--config',
      `127.0.0.1:${port},127.0.0.1:1`,
      '--allow-connect',
      `127.0.0.1:${port}`,
    ]);
    expect(await waitFor(() => run.output().stderr.includes('probes done'), 10_000)).toBe(true);
    const ran = await run.stop('SIGTERM');
    const runLines = instanceLines(ran.stderr, 'connect-probe');
    expect(runLines).toContain(`connect-probe[0] guest info: connect 127.0.0.1:${port} -> reply pong`);
    expect(runLines).toContain('connect-probe[0] warn: denied: connect 127.0.0.1:1 (no outbound rule allows it)');

    const r = await replayJson(file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.diverged).toBeNull();
    expect(r.json.connections.map((c) => [c.how, c.peer, sentBytes(c).toString()])).toEqual([
      ['connected', `127.0.0.1:${port}`, 'ping from plugin\n'],
    ]);
    const text = await wasmux(['replay', file], 60_000);
    expect(text.code, text.stderr).toBe(0);
    expect(instanceLines(text.stdout, 'connect-probe')).toEqual(runLines);
  }, 60_000);
});
