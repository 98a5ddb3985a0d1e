/**
 * The CPU watchdog under wine charges a guest for its thread's CPU time
 * (GetThreadTimes on the worker thread, ffi/thread-cpu.ts), not for wall
 * time: a turn that is slow because the machine is busy is not killed, and
 * a guest that spins is, with a message that says the time was CPU.
 * (Wall time killed echo mid-burst on two loaded cores: 200 connections
 * accepted in one turn under wine ran past 200 ms.)
 */
import { describe, it, expect } from 'vitest';
import { startWineServer, wineNode } from './helpers/wine.js';
import { connect, endOf } from './helpers/hostile.js';

const wine = wineNode();
const skip = 'skip' in wine ? wine.skip : null;

describe.skipIf(skip !== null)(`iocp watchdog under wine${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('kills a plugin spinning in a handler for the CPU it used, and restarts it', async () => {
    const server = await startWineServer([
      'dist/test-plugins/loop-in-handler.wasm',
      '--backend',
      'iocp',
      '--listen',
      '127.0.0.1:0',
      '--cpu-budget',
      '200',
    ]);
    try {
      const trigger = await connect(server.port);
      trigger.write('x');
      await endOf(trigger);
      const deadline = Date.now() + 20_000;
      while (!/guest info: listening on [\s\S]*guest info: listening on /.test(server.output().stderr) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const err = server.output().stderr;
      const m = /killed: ran (\d+) ms of CPU without returning to poll\.wait \(cpu budget 200 ms\)/.exec(err);
      expect(m, err).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThanOrEqual(200);
      expect(err).toMatch(/guest info: listening on [\s\S]*guest info: listening on /); // restarted
    } finally {
      await server.stop('SIGKILL');
    }
  }, 90_000);
});
