// A trap in the middle of a host call: a plugin (raw WAT) whose cabi_realloc
// traps when tcp.recv asks it for the buffer, after the host has accepted
// the read but before it reads. The trace holds that recv's first step (a
// `recv-started` record, written at the end), so the replay lends the
// buffer too and traps at the same place, with the same message.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/server.js';
import { cleanUp, noEpoll, record, replayJson, traceDir } from '../helpers/trace.js';
import { IMPORTS, listenThen, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const TRAP_SIZE = 777;
// listen wrote result<handle> at 1024 (the handle at 1028); accept writes its result at 3072.
const ACCEPT_THEN_RECV = `
  (call $accept (i32.load (i32.const 1028)) (i32.const 3072))
  (if (i32.eqz (i32.load8_u (i32.const 3072)))
    (then (call $recv (i32.load (i32.const 3076)) (i32.const ${TRAP_SIZE}) (i32.const 4096))))`;
const PLUGIN = `(module ${IMPORTS}
  ${runtime().replace('(local $p i32)', `(local $p i32) (if (i32.eq (local.get $size) (i32.const ${TRAP_SIZE})) (then unreachable))`)}
  ${listenThen(ACCEPT_THEN_RECV)})`;

describe.skipIf(noEpoll !== null)(`record and replay: a trap inside recv${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it("replays the recv's lent buffer and the trap in the guest's realloc", async () => {
    const plugin = await watPlugin('trap-in-recv', PLUGIN);
    const file = `${traceDir()}/trap.trace`;
    const run = await record(plugin, file);
    const sock = net.connect(run.port, '127.0.0.1');
    sock.on('error', () => {});
    sock.write('anything');
    expect(await waitFor(() => /error: trapped: /.test(run.output().stderr), 10_000)).toBe(true);
    sock.destroy();
    const ran = await run.stop('SIGTERM');
    const trapped = /\[0\] error: trapped: (.*)$/m.exec(ran.stderr);
    expect(trapped![1]).toMatch(/^unreachable \(linear memory /);

    const r = await replayJson(file, [plugin]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.diverged).toBeNull();
    expect(r.json.end).toEqual({ reason: 'trapped', message: trapped![1] });
    expect(r.json.connections).toHaveLength(1);
    expect(r.json.connections[0]!.received).toBe(0);
  }, 60_000);
});
