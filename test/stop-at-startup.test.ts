// Instances stopped at once after start (stop's force path after 1 ms) end
// closing nothing of this process's. The registry the supervisor closes from
// starts FREE (newRegistry): a worker that dies before its handle table
// exists leaves nothing to close. Zeros there named descriptor 0, so such a
// death closed the host's fd 0 (and, once reused, whatever socket had that
// number). Terminating a thread that early could not be provoked from here
// (its table exists within a few ms), so this checks the outcome, fd 0 and
// the descriptor count, rather than that race.
import { describe, it, expect } from 'vitest';
import { fstatSync } from 'node:fs';
import { serve } from '../dist/host/index.js';
import { ECHO_WASM, openFds, warmUpLibuv } from './helpers/server.js';
import { BACKEND_UNDER_TEST } from './helpers/backend-under-test.js';

describe('stopping instances before they have started', () => {
  it('closes nothing that is not theirs (fd 0 of this process stays open), 5 times', async () => {
    await warmUpLibuv();
    const stdin = fstatSync(0);
    const before = openFds();
    for (let i = 0; i < 5; i++) {
      const server = await serve({
        plugin: ECHO_WASM,
        listen: ['127.0.0.1:0'],
        workers: 2,
        backend: BACKEND_UNDER_TEST,
        stopTimeoutMs: 1,
        logger: () => {},
      });
      await server.stop();
      expect(fstatSync(0).ino, `fd 0 after stop ${i + 1}`).toBe(stdin.ino);
    }
    expect(openFds()).toBe(before);
  });
});
