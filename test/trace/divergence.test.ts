// Divergence: a replay whose plugin asks the host for something other than
// the trace holds stops at that call and names it. A recorded echo session's
// trace with one send's length changed diverges at exactly that call
// (status 1, WASMUX_ERR_REPLAY_DIVERGED, the call's number, what the plugin
// asked and what the trace holds); another plugin is refused unless
// --allow-other-plugin, and then diverges at the first call it asks otherwise.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { K_END, K_HOST_LINE, K_LISTEN, K_SEND, TraceReader } from '../../host/trace/format.js';
import { echoOnce, wasmux } from '../helpers/cli.js';
import { cleanUp, noEpoll, record, traceDir } from '../helpers/trace.js';

afterEach(cleanUp);

/** Bytes of `v` as an unsigned LEB128 varint. */
function varintLength(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

describe.skipIf(noEpoll !== null)(`replay divergence${noEpoll ? ` — skipped: ${noEpoll}` : ''}`, () => {
  it('is reported at the exact call, with what was asked and what the trace holds', async () => {
    const file = `${traceDir()}/echo.trace`;
    const run = await record('dist/plugins/echo.wasm', file);
    expect(await echoOnce(run.port, 'first')).toBe('first');
    expect(await echoOnce(run.port, 'second')).toBe('second');
    expect((await run.stop('SIGTERM')).code).toBe(0);

    const clean = await wasmux(['replay', file], 60_000);
    expect(clean.code, clean.stderr).toBe(0);

    // Find the second connection's send (of "second") and its number among the calls.
    const bytes = readFileSync(file);
    const reader = new TraceReader(bytes, file);
    let call = 0;
    let sends = 0;
    let target: { call: number; handle: number; at: number } | null = null;
    while (!reader.atEnd && target === null) {
      const rec = reader.next();
      if (rec.kind === K_HOST_LINE || rec.kind === K_END) continue;
      call++;
      if (rec.kind === K_SEND && rec.f.length === 6 && ++sends === 1) {
        target = { call, handle: rec.f.handle as number, at: rec.at };
      }
    }
    expect(target).not.toBeNull();
    const { handle, at } = target!;
    // The length field follows the kind byte and the handle; 6 becomes 7 (one byte either way).
    const lengthAt = at + 1 + varintLength(handle);
    expect(bytes[lengthAt]).toBe(6);
    bytes[lengthAt] = 7;
    const tampered = `${file}.tampered`;
    writeFileSync(tampered, bytes);

    const r = await wasmux(['replay', tampered], 60_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `wasmux: error WASMUX_ERR_REPLAY_DIVERGED: call #${target!.call}: the guest called tcp.send(handle ${handle}, length 6); ` +
        `the trace holds tcp.send(handle ${handle}, length 7) here\n`,
    );
    // What happened up to there is printed: the first connection's reply.
    expect(r.stdout).toContain('"first"');

    const json = await wasmux(['replay', tampered, '--json'], 60_000);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).diverged.call).toBe(target!.call);
  }, 60_000);

  it('refuses another plugin, and with --allow-other-plugin shows where it diverges', async () => {
    const file = `${traceDir()}/echo.trace`;
    const run = await record('dist/plugins/echo.wasm', file);
    expect(await echoOnce(run.port, 'x')).toBe('x');
    expect((await run.stop('SIGTERM')).code).toBe(0);

    const refused = await wasmux(['replay', file, 'dist/plugins/http.wasm'], 60_000);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /^wasmux: error WASMUX_ERR_TRACE: dist\/plugins\/http\.wasm \(sha256 [0-9a-f]{64}\) is not the plugin the trace recorded \(sha256 [0-9a-f]{64}\); --allow-other-plugin replays it anyway\n$/,
    );

    // trap-mid-request (another SDK plugin) asks listen(its address, backlog 1024), then
    // register(the listener, token 0xffffffff, readable): it diverges at the first of those
    // two calls the echo trace does not hold.
    const calls = [];
    const reader = new TraceReader(readFileSync(file), file);
    while (!reader.atEnd) {
      const rec = reader.next();
      if (rec.kind !== K_HOST_LINE && rec.kind !== K_END) calls.push(rec);
    }
    const listenMatches = calls[0]!.kind === K_LISTEN && calls[0]!.f.backlog === 1024;
    const at = listenMatches ? 2 : 1;
    const asked = listenMatches
      ? `poll.register(handle ${calls[0]!.f.result}, tokenLo 4294967295, tokenHi 0, interest 1)`
      : 'tcp.listen(address ';
    const other = await wasmux(['replay', file, 'dist/test-plugins/trap-mid-request.wasm', '--allow-other-plugin'], 60_000);
    expect(other.code).toBe(1);
    expect(
      other.stderr.startsWith('wasmux: replaying on dist/test-plugins/trap-mid-request.wasm, not the recorded plugin (sha256 differs)\n'),
    ).toBe(true);
    expect(other.stderr).toContain(`\nwasmux: error WASMUX_ERR_REPLAY_DIVERGED: call #${at}: the guest called ${asked}`);
  }, 60_000);
});
