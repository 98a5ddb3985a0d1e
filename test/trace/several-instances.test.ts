// Several instances record one trace each: with --workers 2 the traces are
// <file>.0 and <file>.1 (docs/trace-format.md, "File names"), each names its
// instance, and each replays to its own connections; together they hold
// every connection the clients made. With several plugins: <file>.<plugin>,
// a name given twice with -2.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { echoOnce } from '../helpers/cli.js';
import { waitFor } from '../helpers/server.js';
import { cleanUp, noEpoll, record, replayJson, sentBytes, traceDir } from '../helpers/trace.js';

afterEach(cleanUp);

const CLIENTS = 12;

describe.skipIf(noEpoll !== null)(`record with several instances${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('writes <file>.<instance> for each, and each replays', async () => {
    const file = `${traceDir()}/echo.trace`;
    const run = await record('dist/plugins/echo.wasm', file, ['--workers', '2']);
    const sent: string[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      sent.push(`client ${i}`);
      expect(await echoOnce(run.port, `client ${i}`)).toBe(`client ${i}`);
    }
    expect((await run.stop('SIGTERM')).code).toBe(0);
    expect(existsSync(file)).toBe(false);

    const replies: string[] = [];
    for (const instance of [0, 1]) {
      const r = await replayJson(`${file}.${instance}`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.diverged).toBeNull();
      expect(r.json.header.instance).toBe(instance);
      expect(r.json.end.reason).toBe('stopped');
      replies.push(...r.json.connections.map((c) => sentBytes(c).toString('utf8')));
    }
    expect(replies.sort()).toEqual(sent.sort());
  }, 60_000);

  it('writes <file>.<plugin> for several plugins, -2 for a name given twice', async () => {
    const file = `${traceDir()}/many.trace`;
    const run = await record('dist/plugins/echo.wasm', file, [
      'dist/plugins/http.wasm',
      '--listen',
      '127.0.0.1:0',
      'dist/plugins/echo.wasm',
      '--listen',
      '127.0.0.1:0',
    ]);
    // Every plugin prints its line once ready, in no set order: the port of an echo's.
    const listening = () => [...run.output().stdout.matchAll(/^wasmux: (\w+) listening on 127\.0\.0\.1:(\d+) /gm)];
    expect(await waitFor(() => listening().length === 3, 10_000)).toBe(true);
    const echoPort = Number(listening().find((m) => m[1] === 'echo')![2]);
    expect(await echoOnce(echoPort, 'first echo')).toBe('first echo');
    expect((await run.stop('SIGTERM')).code).toBe(0);
    expect(existsSync(file)).toBe(false);
    for (const [suffix, name] of [
      ['echo', 'echo'],
      ['http', 'http'],
      ['echo-2', 'echo'],
    ]) {
      const r = await replayJson(`${file}.${suffix}`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.header.plugin.name).toBe(name);
      expect(r.json.end.reason).toBe('stopped');
    }
    // The client reached one of the two echos (both are named echo).
    const replies: string[] = [];
    for (const suffix of ['echo', 'echo-2']) {
      replies.push(...(await replayJson(`${file}.${suffix}`)).json.connections.map((c) => sentBytes(c).toString()));
    }
    expect(replies).toEqual(['first echo']);
  }, 60_000);
});
