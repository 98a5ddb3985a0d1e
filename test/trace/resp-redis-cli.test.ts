// The resp plugin recorded with `wasmux run --record` on epoll, redis-cli as
// the client (one session of several commands on one connection, then one
// command per connection), stopped by SIGTERM: `wasmux replay`, offline,
// sends exactly the replies redis-cli got, and prints the plugin's own log
// line (its settings at start) as the run printed it.
import { afterEach, describe, expect, it } from 'vitest';
import { wasmux } from '../helpers/cli.js';
import { missing, runProgram } from '../helpers/resp.js';
import { cleanUp, instanceLines, noEpoll, record, replayJson, sentBytes, traceDir } from '../helpers/trace.js';

afterEach(cleanUp);

const why = noEpoll ?? missing('redis-cli');

describe.skipIf(why !== null)(`record and replay: resp with redis-cli${why ? ` — skipped: ${why}` : ''}`, () => {
  it('replays the replies of every connection and the log lines', async () => {
    const file = `${traceDir()}/resp.trace`;
    const run = await record('dist/plugins/resp.wasm', file);
    const cli = (args: string[], input?: string) =>
      runProgram('redis-cli', ['-h', '127.0.0.1', '-p', String(run.port), ...args], { input });
    // One connection, several commands (redis-cli reads them from stdin), raw output.
    const session = await cli([], 'SET greeting hello\nINCR hits\nINCR hits\nGET greeting\nDEL greeting\nGET greeting\nEXISTS hits\n');
    expect(session.code, session.stderr).toBe(0);
    expect(session.stdout).toBe('OK\n1\n2\nhello\n1\n\n1\n');
    // Then one connection per command.
    const singles = [
      ['SET', 'k', 'v'],
      ['GET', 'k'],
      ['INCRBY', 'hits', '40'],
    ];
    const printed: string[] = [];
    for (const args of singles) {
      const one = await cli(args);
      expect(one.code, one.stderr).toBe(0);
      printed.push(one.stdout);
    }
    expect(printed).toEqual(['OK\n', 'v\n', '42\n']);
    const ran = await run.stop('SIGTERM');
    expect(ran.code).toBe(0);

    const r = await replayJson(file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.diverged).toBeNull();
    expect(r.json.end.reason).toBe('stopped');
    // Exactly the RESP redis-cli decoded above. Reading commands from stdin, redis-cli 7 first
    // asks COMMAND DOCS (for its hints): that reply (an array) comes first on the session.
    const replies = r.json.connections.map((c) => sentBytes(c).toString('latin1'));
    expect(replies[0]).toMatch(/^\*\d+\r\n/);
    replies[0] = replies[0]!.slice(replies[0]!.indexOf('+OK\r\n:1\r\n'));
    expect(replies).toEqual(['+OK\r\n:1\r\n:2\r\n$5\r\nhello\r\n:1\r\n$-1\r\n:1\r\n', '+OK\r\n', '$1\r\nv\r\n', ':42\r\n']);
    expect(r.json.connections.every((c) => c.closed)).toBe(true);

    const text = await wasmux(['replay', file], 60_000);
    expect(text.code, text.stderr).toBe(0);
    const runLines = instanceLines(ran.stderr, 'resp');
    expect(runLines.some((l) => l.startsWith('resp[0] guest info: resp: maxmemory '))).toBe(true);
    expect(instanceLines(text.stdout, 'resp')).toEqual(runLines);
  }, 60_000);
});
