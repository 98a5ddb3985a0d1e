// A session of the http plugin recorded with `wasmux run --record` on epoll,
// curl as the client (one request, two keep-alive requests on one
// connection, a request with Connection: close, a 404), then stopped by
// SIGTERM: `wasmux replay` of the trace, offline, sends on each connection
// exactly the bytes curl received on it, prints the run's log lines, and ends
// the way the run did (stopped in its wait).
import { afterEach, describe, expect, it } from 'vitest';
import { wasmux } from '../helpers/cli.js';
import { curlRun } from '../helpers/http.js';
import { cleanUp, instanceLines, noEpoll, record, replayJson, sentBytes, traceDir } from '../helpers/trace.js';

afterEach(cleanUp);

describe.skipIf(noEpoll !== null)(`record and replay: http with curl${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('replays every reply byte for byte, the log lines, and the stop', async () => {
    const file = `${traceDir()}/http.trace`;
    const run = await record('dist/plugins/http.wasm', file, ['--log-level', 'debug']);
    const url = (path: string) => `http://127.0.0.1:${run.port}${path}`;
    // One curl per connection, in order: the replay lists connections in the order they were accepted.
    const sessions = [
      ['-i', '--raw', url('/')],
      ['-i', '--raw', url('/'), url('/no-such-path')], // keep-alive: two requests, one connection
      ['-i', '--raw', '-H', 'Connection: close', url('/')],
      ['-i', '--raw', '-X', 'POST', '--data', 'x=1', url('/')],
    ];
    const received: Buffer[] = [];
    for (const args of sessions) {
      const c = await curlRun(args);
      expect(c.code, c.stderr).toBe(0);
      received.push(c.stdout);
    }
    expect(received[1]!.toString('latin1')).toMatch(/^HTTP\/1\.1 200 [\s\S]*HTTP\/1\.1 404 /);
    const ran = await run.stop('SIGTERM');
    expect(ran.code).toBe(0);

    const r = await replayJson(file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.diverged).toBeNull();
    expect(r.json.end).toEqual({ reason: 'stopped', message: null });
    expect(r.json.connections.map((c) => c.how)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
    r.json.connections.forEach((c, i) => {
      expect(sentBytes(c).equals(received[i]!), `connection ${i + 1}: ${sentBytes(c).toString('latin1')}`).toBe(true);
    });

    // The text transcript: the same log lines as the run printed (debug and up, as asked; the
    // http plugin writes none of its own: resp-redis-cli and trap-mid-request check lines that exist).
    const text = await wasmux(['replay', file, '--log-level', 'debug'], 60_000);
    expect(text.code, text.stderr).toBe(0);
    expect(instanceLines(text.stdout, 'http')).toEqual(instanceLines(ran.stderr, 'http'));
    expect(text.stdout).toContain('connection 2: handle ');
    expect(text.stdout).toContain('HTTP/1.1 404 Not Found\\r\\n');
    expect(text.stdout).toMatch(/\nend: stopped\nreplayed \d+ host calls: the plugin did what the trace holds\n$/);
  }, 60_000);
});
