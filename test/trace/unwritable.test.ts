// A trace the instance cannot open (here the --record path is a directory):
// the instance says so in one warning and serves unrecorded; the run is not
// refused for it.
import { afterEach, describe, expect, it } from 'vitest';
import { echoOnce } from '../helpers/cli.js';
import { cleanUp, noEpoll, record, traceDir } from '../helpers/trace.js';

afterEach(cleanUp);

describe.skipIf(noEpoll !== null)(`record to a file that cannot be opened${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('warns once and serves unrecorded', async () => {
    const dir = traceDir();
    const run = await record('dist/plugins/echo.wasm', dir);
    expect(await echoOnce(run.port, 'still echoing')).toBe('still echoing');
    const ran = await run.stop('SIGTERM');
    expect(ran.code).toBe(0);
    const warnings = ran.stderr.split('\n').filter((l) => l.includes('cannot record'));
    expect(warnings).toEqual([
      expect.stringMatching(new RegExp(`^echo\\[0\\] warn: cannot record to ${dir}: EISDIR: .*; running unrecorded$`)),
    ]);
  }, 30_000);
});
