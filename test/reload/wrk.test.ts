// Reload under load: wrk keeps 32 keep-alive connections busy against the
// http plugin (2 workers, through the real CLI) while wasmux reloads 20
// times on SIGHUP, each reload awaited by its log line before the next.
// Not one socket error, not one non-2xx response: no connection attempt
// refused or reset (the listening sockets are handed from each version to
// the next), and every keep-alive connection of an old version ended by a
// response that says `Connection: close` (the SDK's draining mode), never
// cut.
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { backendTargets, startServer, stopAll } from '../helpers/backends.js';

const RELOADS = 20;
const SPACING_MS = 300;
const HTTP = 'dist/plugins/http.wasm';

afterAll(stopAll);

/** What wrk printed, once it ended (SIGINT makes it stop and print its summary). */
function startWrk(port: number) {
  const child = spawn('wrk', ['-t2', '-c32', '-d60s', `http://127.0.0.1:${port}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const done = new Promise<string>((resolve) => child.on('close', () => resolve(out)));
  return { child, done };
}

const targets = backendTargets().filter((t) => t.name === 'epoll' || t.name === 'poll');

describe.each(targets)('20 reloads under wrk on $label', (target) => {
  it.skipIf(target.skipReason !== null)('0 socket errors, 0 non-2xx responses, every reload done', { timeout: 60_000 }, async () => {
    const server = await startServer(target, HTTP, ['--workers', '2', '--drain-timeout', '3000']);
    const wrk = startWrk(server.port);
    const wrkEnd = setTimeout(() => wrk.child.kill('SIGKILL'), 55_000);
    try {
      await new Promise((r) => setTimeout(r, 500)); // load first
      const t0 = performance.now();
      for (let n = 1; n <= RELOADS; n++) {
        server.child.kill('SIGHUP');
        await server.waitFor(new RegExp(`wasmux: http reloaded: version ${n} \\(sha256 [0-9a-f]{64}\\)`), 'stderr', 15_000);
        await new Promise((r) => setTimeout(r, SPACING_MS));
      }
      const reloadsMs = performance.now() - t0;
      wrk.child.kill('SIGINT');
      const out = await wrk.done;
      console.log(`${target.label}: ${RELOADS} reloads in ${Math.round(reloadsMs)} ms under load\n${out}`);
      const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
      expect(requests).toBeGreaterThan(1000);
      const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      if (errors) expect(errors.slice(1).map(Number), out).toEqual([0, 0, 0, 0]);
      expect(out).not.toMatch(/Non-2xx/);
      // Every reload logged done, none failed; the old versions ended.
      const stderr = server.stderr();
      expect(stderr.match(/wasmux: http reloaded: version \d+/g)).toHaveLength(RELOADS);
      expect(stderr).not.toMatch(/reload of http failed|reload failed/);
      await server.waitFor(new RegExp(`reload: version ${RELOADS - 1} ended`), 'stderr', 10_000);
    } finally {
      clearTimeout(wrkEnd);
      wrk.child.kill('SIGKILL');
    }
    const end = await server.stop(target.stopSignal, 10_000);
    expect(end.code).toBe(0);
  });
});
