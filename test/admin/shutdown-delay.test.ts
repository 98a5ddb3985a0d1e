/**
 * `wasmux run --shutdown-delay <ms>`: on SIGTERM the process first says
 * 503 "stopping" on /readyz while it keeps serving and accepting new
 * connections for the delay (a load balancer's checks see it leave while
 * nothing is refused), then drains and exits 0. A second signal stops at once.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { adminUrl, startRun, type Running } from '../helpers/cli.js';

let run: Running | null = null;
afterEach(async () => {
  await run?.stop('SIGKILL');
  run = null;
});

/** One echo round trip on a new connection: the plugin still accepts and serves. */
function echoes(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const timer = setTimeout(() => (s.destroy(), resolve(false)), 2000);
    s.on('connect', () => s.write('ping\n'));
    s.on('data', (d) => {
      if (String(d) === 'ping\n') {
        clearTimeout(timer);
        s.destroy();
        resolve(true);
      }
    });
    s.on('error', () => (clearTimeout(timer), resolve(false)));
  });
}

const DELAY_MS = 1500;

describe('wasmux run --shutdown-delay', () => {
  it('says 503 "stopping" on /readyz at once on SIGTERM, keeps accepting for the delay, then drains and exits 0', async () => {
    run = await startRun([
      'dist/plugins/echo.wasm',
      '--listen',
      '127.0.0.1:0',
      '--admin',
      '127.0.0.1:0',
      '--shutdown-delay',
      String(DELAY_MS),
    ]);
    const base = adminUrl(run);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const t0 = performance.now();
    const stopped = run.stop('SIGTERM');
    await expect.poll(() => run!.output().stderr, { timeout: 2000, interval: 10 }).toMatch(/SIGTERM, not ready/);
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.text()).toBe('stopping\n');
    // New connections are still accepted and served during the delay.
    expect(await echoes(run.port)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(DELAY_MS);
    const end = await stopped;
    expect(end.code).toBe(0);
    expect(end.ms).toBeGreaterThanOrEqual(DELAY_MS);
    expect(end.stderr).toMatch(/SIGTERM, not ready \(\/readyz 503\); serving 1500 ms more before draining\n[\s\S]*SIGTERM, draining/);
  });

  it('stops at once on a second signal during the delay', async () => {
    run = await startRun(['dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--shutdown-delay', '60000']);
    const stopped = run.stop('SIGTERM');
    await expect.poll(() => run!.output().stderr, { timeout: 2000, interval: 10 }).toMatch(/SIGTERM, not ready/);
    run.child.kill('SIGTERM');
    const end = await stopped;
    expect(end.code).toBe(0);
    expect(end.ms).toBeLessThan(5000);
    expect(end.stderr).toMatch(/SIGTERM again, stopping at once/);
  });

  it('refuses a --shutdown-delay that is not a whole number', async () => {
    const { wasmux } = await import('../helpers/cli.js');
    const r = await wasmux(['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--shutdown-delay', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('WASMUX_ERR_BAD_ARGUMENT');
    expect(r.stderr).toContain('--shutdown-delay must be a whole number');
  });
});
