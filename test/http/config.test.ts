/**
 * The http plugin's --config string (the SDK HTTP server's options, assembly/sdk/http/options.ts):
 * limits that take effect, a bad string that stops the plugin at start with
 * a message naming the problem, and the plugin run the way an operator
 * would, through `wasmux run`.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { destroyClients } from '../helpers/server.js';
import { startRun } from '../helpers/cli.js';
import { RawClient, curl1, HTTP_WASM, startHttp, type HttpServer } from '../helpers/http.js';

let running: HttpServer | null = null;

afterEach(async () => {
  destroyClients();
  await running?.stop();
  running = null;
});

describe('http --config', () => {
  it('max-body, max-uri and max-header set the limits (separated by commas or spaces)', async () => {
    const http = (running = await startHttp({ config: 'max-body=16, max-uri=32 max-header=256' }));
    const ok = await curl1(['--data-binary', 'x'.repeat(16), `${http.base}/echo`]);
    expect(ok.status).toBe(200);
    expect((await curl1(['--data-binary', 'x'.repeat(17), `${http.base}/echo`])).status).toBe(413);
    expect((await curl1([`${http.base}/${'u'.repeat(31)}`])).status).toBe(404);
    expect((await curl1([`${http.base}/${'u'.repeat(32)}`])).status).toBe(414);
    // max-header counts the header lines with their CRLFs and the final empty line.
    const c = await RawClient.open(http.port);
    const fill = (n: number) => `GET / HTTP/1.1\r\nHost: t\r\nX: ${'h'.repeat(n)}\r\n\r\n`;
    c.send(fill(256 - 9 - 5 - 2)); // exactly 256 bytes
    expect((await c.response()).status).toBe(200);
    c.send(fill(256 - 9 - 5 - 2 + 1));
    expect((await c.response()).status).toBe(431);
  });

  it.each([
    ['an unknown key', 'idle-ms=100,colour=blue', /unknown key "colour"/],
    ['a value that is not a number', 'idle-ms=soon', /idle-ms wants a positive integer/],
    ['metrics other than 0 or 1', 'metrics=2', /metrics wants 0 or 1/],
  ])('%s stops the plugin at start, naming the problem', async (_name, config, message) => {
    const err = await startHttp({ config }).then(
      (s) => {
        running = s;
        return null;
      },
      (e: Error & { code?: string }) => e,
    );
    expect(err).not.toBeNull();
    // The host retries an instance that fails at start, then gives up on the plugin.
    expect(['WASMUX_ERR_PLUGIN_FAILED', 'WASMUX_ERR_CRASH_LOOP']).toContain(err!.code);
    expect(err!.message).toMatch(message);
  });

  it('metrics=0 defines no plugin metric; by default requests_total{class} counts the responses', async () => {
    const off = (running = await startHttp({ config: 'metrics=0' }));
    expect((await curl1([`${off.base}/`])).status).toBe(200);
    expect(off.server.pluginMetrics()).toEqual([]);
    await off.stop();
    const on = (running = await startHttp());
    expect((await curl1([`${on.base}/`])).status).toBe(200);
    const [m] = on.server.pluginMetrics();
    expect([...m!.metrics.values()].map((d) => [d.kind, d.name, d.labels])).toEqual([['counter', 'requests_total', ['class']]]);
    expect(m!.series.map((s) => s.values[0])).toEqual(['2xx', '3xx', '4xx', '5xx']);
  });

  it('runs under `wasmux run` with --config, and stops cleanly on SIGTERM', async () => {
    const run = await startRun([HTTP_WASM, '--listen', '127.0.0.1:0', '--config', 'idle-ms=200']);
    try {
      expect(run.output().stdout).toMatch(/http listening on 127\.0\.0\.1:\d+/);
      const r = await curl1([`http://127.0.0.1:${run.port}/`]);
      expect(r.status).toBe(200);
      const c = await RawClient.open(run.port);
      const t = performance.now();
      c.send('GET / HTTP/1.1\r\n');
      expect((await c.response({ timeoutMs: 3_000 })).status).toBe(408);
      expect(performance.now() - t).toBeLessThan(3_000); // idle-ms=200 applies, not the default 5,000
    } finally {
      const end = await run.stop('SIGTERM');
      expect(end.code).toBe(0);
    }
  });
});
