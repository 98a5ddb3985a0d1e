// A recorded instance the watchdog killed: the loop-in-handler test plugin
// (assembly/test-plugins/loop-in-handler) spins once it has read a byte, and
// its thread is terminated, with the last records still in its chunk. The
// supervisor writes them and the end record (killed, its own message) for
// it, so the trace is whole; replay runs the guest up to the spin, gives it
// twice the CPU budget (a second at least) past the trace's last call, ends
// its thread, and reports the recorded kill (status 0).
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/server.js';
import { cleanUp, noEpoll, record, replayJson, traceDir } from '../helpers/trace.js';

afterEach(cleanUp);

describe.skipIf(noEpoll !== null)(`record and replay: a watchdog kill${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('is finished by the supervisor, and replays to the same kill', async () => {
    const file = `${traceDir()}/loop.trace`;
    const run = await record('dist/test-plugins/loop-in-handler.wasm', file);
    const sock = net.connect(run.port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write('x');
    expect(await waitFor(() => /\[0\] error: killed: /.test(run.output().stderr), 10_000)).toBe(true);
    sock.destroy();
    const ran = await run.stop('SIGTERM');
    const killed = /^loop-in-handler\[0\] error: killed: (.*)$/m.exec(ran.stderr);
    expect(killed![1]).toMatch(/^ran \d+ ms of CPU without returning to poll\.wait \(cpu budget 200 ms\)$/);

    const t = performance.now();
    const r = await replayJson(file);
    const ms = performance.now() - t;
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.diverged).toBeNull();
    expect(r.json.recorded).toEqual({ reason: 'killed', message: killed![1] });
    expect(r.json.end).toEqual({ reason: 'killed', message: killed![1] });
    // The connection it read a byte from, before spinning.
    expect(r.json.connections.map((c) => c.received)).toEqual([1]);
    expect(ms).toBeLessThan(10_000);
  }, 60_000);
});
