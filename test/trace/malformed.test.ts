// Traces wasmux replay cannot read: a file that is not a trace, a trace of a
// version this wasmux does not read, one cut inside its header, one cut
// inside a record, one with a record kind it does not know. Each is refused
// with one line naming WASMUX_ERR_TRACE and what is wrong, status 2, before
// or while replaying, never as a divergence or a crash.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { echoOnce, wasmux } from '../helpers/cli.js';
import { cleanUp, noEpoll, record, traceDir } from '../helpers/trace.js';

let good: Buffer;
let dir: string;

beforeAll(async () => {
  if (noEpoll !== null) return;
  dir = traceDir();
  const run = await record('dist/plugins/echo.wasm', `${dir}/echo.trace`);
  expect(await echoOnce(run.port, 'hello')).toBe('hello');
  expect((await run.stop('SIGTERM')).code).toBe(0);
  good = readFileSync(`${dir}/echo.trace`);
}, 30_000);

afterAll(cleanUp);

async function refused(name: string, bytes: Uint8Array, message: RegExp): Promise<void> {
  const file = `${dir}/${name}`;
  writeFileSync(file, bytes);
  const r = await wasmux(['replay', file], 60_000);
  expect(r.code, r.stdout).toBe(2);
  const lines = r.stderr.split('\n');
  expect(lines, r.stderr).toHaveLength(2); // one line, then the final newline
  expect(lines[0]).toMatch(/^wasmux: error WASMUX_ERR_TRACE: /);
  expect(lines[0]).toMatch(message);
}

describe.skipIf(noEpoll !== null)(`replay of a malformed trace${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('replays the intact trace (the cases below are refused for what was changed)', async () => {
    const r = await wasmux(['replay', `${dir}/echo.trace`], 60_000);
    expect(r.code, r.stderr).toBe(0);
  });

  it('refuses a file without the magic', async () => {
    const b = Buffer.from(good);
    b.write('NOTATRCE', 0, 'latin1');
    await refused('magic', b, /magic is not a wasmux trace \(no WASMUXTR magic at its start\)$/);
    await refused('empty', new Uint8Array(0), /is not a wasmux trace/);
  });

  it('refuses a future version', async () => {
    const b = Buffer.from(good);
    b.writeUInt16LE(2, 8);
    await refused('v2', b, /v2 is a version 2 trace; this wasmux reads version 1 only$/);
  });

  it('refuses a trace cut inside its header', async () => {
    await refused('header-cut', good.subarray(0, 40), /header-cut is truncated inside its header$/);
  });

  it('refuses a trace cut inside a record', async () => {
    // The end record of a stop is [kind, reason, hasMessage, length 0]: one byte less cuts it.
    expect(good.subarray(-4)).toEqual(Buffer.from([18, 2, 0, 0]));
    await refused('record-cut', good.subarray(0, good.length - 1), /record-cut is truncated inside a record \(at byte \d+\)$/);
  });

  it('refuses a record of an unknown kind', async () => {
    const b = Buffer.concat([good.subarray(0, good.length - 4), Buffer.from([99]), good.subarray(-4)]);
    await refused('kind', b, /kind: unknown record kind 99 at byte \d+$/);
  });

  it('says so when the file cannot be read', async () => {
    const r = await wasmux(['replay', `${dir}/no-such-file`], 60_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^wasmux: error WASMUX_ERR_IO: cannot read trace .*no-such-file: ENOENT/);
  });
});
