// A trap recorded and replayed: the trap-mid-request test plugin
// (assembly/test-plugins/trap-mid-request) served with --record answers a
// line, then traps on the line "trap" while another client is mid-request.
// `wasmux replay` of that instance's trace, offline, ends with the same trap
// message as the run logged, after the same log lines; the restarted
// instance's trace (named with .r1) replays to its stop.
import net from 'node:net';
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { wasmux } from '../helpers/cli.js';
import { waitFor } from '../helpers/server.js';
import { cleanUp, instanceLines, noEpoll, record, replayJson, sentBytes, traceDir } from '../helpers/trace.js';

afterEach(cleanUp);

function client(port: number): Promise<{ sock: net.Socket; got: () => string; ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    sock.setEncoding('latin1');
    sock.on('data', (d) => (got += d));
    const ended = new Promise<void>((r) => sock.on('close', () => r()));
    sock.on('error', () => {});
    sock.once('connect', () => resolve({ sock, got: () => got, ended }));
    sock.once('error', reject);
  });
}

describe.skipIf(noEpoll !== null)(`record and replay: a trap${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('replays offline to the same trap message; the restart has its own trace', async () => {
    const file = `${traceDir()}/trap.trace`;
    const run = await record('dist/test-plugins/trap-mid-request.wasm', file);
    const a = await client(run.port);
    a.sock.write('hello 1\n');
    expect(await waitFor(() => a.got() === 'hello 1\n', 5000)).toBe(true);
    const b = await client(run.port);
    b.sock.write('half a requ');
    await new Promise((r) => setTimeout(r, 100));
    a.sock.write('trap\n');
    await Promise.all([a.ended, b.ended]);
    // The supervisor logs the trap, restarts the instance, which listens again.
    expect(await waitFor(() => /listening on [\s\S]*listening on /.test(run.output().stderr), 10_000)).toBe(true);
    const ran = await run.stop('SIGTERM');
    const trapped = /^trap-mid-request\[0\] error: trapped: (.*)$/m.exec(ran.stderr);
    expect(trapped, ran.stderr).not.toBeNull();
    expect(trapped![1]).toMatch(/^unreachable \(linear memory [\d.]+ MiB of 64 MiB allowed\)$/);

    const r = await replayJson(file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.diverged).toBeNull();
    expect(r.json.end).toEqual({ reason: 'trapped', message: trapped![1] });
    expect(r.json.header.incarnation).toBe(0);
    expect(r.json.connections.map((c) => sentBytes(c).toString('latin1'))).toEqual(['hello 1\n', '']);
    expect(r.json.lines.map((l) => `${l.origin} ${l.level}: ${l.message}`)).toEqual([
      expect.stringMatching(/^guest info: listening on 127\.0\.0\.1:\d+$/),
      'guest info: trapping mid-request',
    ]);

    // The text transcript: the run's lines of this instance, up to the trap, and the trap.
    const text = await wasmux(['replay', file], 60_000);
    expect(text.code, text.stderr).toBe(0);
    const runLines = instanceLines(ran.stderr, 'trap-mid-request');
    const upToTrap = runLines.slice(
      0,
      runLines.findIndex((l) => l.includes('error: trapped: ')),
    );
    expect(upToTrap).toEqual([
      `trap-mid-request[0] guest info: listening on 127.0.0.1:${run.port}`,
      'trap-mid-request[0] guest info: trapping mid-request',
    ]);
    expect(instanceLines(text.stdout, 'trap-mid-request')).toEqual(upToTrap);
    expect(text.stdout).toContain(`\nend: trapped: ${trapped![1]}\n`);

    // The restarted instance: its own file, replayed to its stop.
    expect(existsSync(`${file}.r1`)).toBe(true);
    const again = await replayJson(`${file}.r1`);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json.header.incarnation).toBe(1);
    expect(again.json.end.reason).toBe('stopped');
  }, 60_000);
});
