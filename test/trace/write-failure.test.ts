// A trace that cannot be written (here /dev/full: every write fails with
// ENOSPC): the recording stops with one warning, and the instance goes on
// serving; a full disk never ends an instance.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { echoOnce } from '../helpers/cli.js';
import { cleanUp, noEpoll, record } from '../helpers/trace.js';

afterEach(cleanUp);

const why = noEpoll ?? (existsSync('/dev/full') ? null : 'no /dev/full here');

describe.skipIf(why !== null)(`record to a full disk${why ? ` — skipped: ${why}` : ''}`, () => {
  it('stops the recording with one warning; the instance serves on', async () => {
    const run = await record('dist/plugins/echo.wasm', '/dev/full');
    for (let i = 0; i < 3; i++) expect(await echoOnce(run.port, `still echoing ${i}`)).toBe(`still echoing ${i}`);
    const ran = await run.stop('SIGTERM');
    expect(ran.code).toBe(0);
    expect(ran.stderr).toContain('ends: none');
    const warnings = ran.stderr.split('\n').filter((l) => l.includes('recording stopped'));
    expect(warnings).toEqual([
      'echo[0] warn: recording stopped: writing the trace failed (ENOSPC: no space left on device, write); the instance goes on',
    ]);
  }, 30_000);
});
