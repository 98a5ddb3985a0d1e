// A plugin that becomes ready, then spins without ever waiting, opening and
// closing descriptors as fast as it can: another listener on its own address
// (SO_REUSEPORT), closed at once, and a connection to an allowed listener of
// this test's, closed at once. Nearly all its time is spent inside those host
// calls, so the watchdog's kills land in them: each kill must wait for the
// call to finish (the kill gate, host/sandbox/gate.ts), so that no socket exists
// unrecorded when the thread dies. Under a small CPU budget, 4 workers are
// killed 20 times or more; afterwards no socket listens on the plugin's port
// and this process's descriptors are back to their baseline.
import { describe, it, expect, afterEach } from 'vitest';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { Neighbour, cleanUp, dump, host, waitFor, withTimeout } from '../helpers/hostile.js';
import { baseline, expectContained } from '../helpers/containment.js';
import { IMPORTS, runtime, watPlugin } from '../helpers/wat.js';

afterEach(cleanUp);

const WORKERS = 4;
const MIN_KILLS = 20;
const BUDGET_MS = 20;

// The own address's fields, from the first socket-address at $list (see wat.ts listenThen).
const OWN = `(i32.load8_u (local.get $list))
      (i32.load8_u offset=2 (local.get $list)) (i32.load8_u offset=3 (local.get $list))
      (i32.load8_u offset=4 (local.get $list)) (i32.load8_u offset=5 (local.get $list))
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.load16_u offset=18 (local.get $list))`;

/** result<handle, error-code> at `at`: close the handle when it is ok. */
const closeIfOk = (at: number) =>
  `(if (i32.eqz (i32.load8_u (i32.const ${at}))) (then (call $close (i32.load (i32.const ${at + 4})) (i32.const 1200))))`;

function churner(targetPort: number): string {
  return `(module
  ${IMPORTS}
  ${runtime()}
  (func (export "run") (param $cfg i32) (param $cfgLen i32) (param $list i32) (param $n i32) (param $inst i32) (result i32)
    ;; The listener that makes the instance ready.
    (call $listen ${OWN} (i32.const 128) (i32.const 1024))
    (loop $spin
      (call $listen ${OWN} (i32.const 16) (i32.const 1040))
      ${closeIfOk(1040)}
      (call $connect (i32.const 0) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const ${targetPort}) (i32.const 1056))
      ${closeIfOk(1056)}
      (br $spin))
    (i32.const 0)))`;
}

/** Sockets listening on `port` in this network namespace (/proc/net/tcp and tcp6, state 0A). */
function listenersOn(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[1]!.endsWith(`:${hexPort}`) && f[3] === '0A') n++;
    }
  }
  return n;
}

describe('a plugin killed while it opens and closes descriptors', () => {
  it(`is killed ${MIN_KILLS}+ times across ${WORKERS} workers inside listen/connect/close and leaves no descriptor, no listener behind`, async () => {
    // The allowed target: it takes every connection and drops it. (Before the
    // baseline: its listener stays open until the end.)
    let accepted = 0;
    const target = net.createServer((s) => {
      accepted++;
      s.on('error', () => {});
      s.destroy();
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const targetPort = (target.address() as net.AddressInfo).port;
    try {
      // Built first: jco holds files open while it loads, which the baseline must not count.
      const plugin = await watPlugin('kill-mid-call', churner(targetPort));
      const base = await baseline();
      const neighbour = await Neighbour.start();
      const p = await host(plugin, {
        workers: WORKERS,
        policy: { cpuBudgetMs: BUDGET_MS, connect: [`127.0.0.1:${targetPort}`] },
        waitReady: false,
      });
      const kills = () => p.server.stats().reduce((n, s) => n + (s.ends.killed ?? 0), 0);
      // Sampled all along: what listens on the plugin's port (each live
      // instance has its own listener and at most one more in flight).
      let maxListeners = 0;
      const sampler = setInterval(() => (maxListeners = Math.max(maxListeners, listenersOn(p.port))), 5);
      const t = performance.now();
      await withTimeout(p.server.ready, 15_000, 'ready');
      const reached = await waitFor(() => kills() >= MIN_KILLS, 45_000, 20);
      clearInterval(sampler);
      const ms = performance.now() - t;
      expect(reached, `${kills()} kills; log:\n${dump(p.logs.slice(-40))}`).toBe(true);
      expect(p.server.failed).toBeNull();
      // Killed, not ended another way, and never by the forced fallback.
      for (const s of p.server.stats())
        expect(
          Object.keys(s.ends).filter((k) => k !== 'killed'),
          JSON.stringify(s.ends),
        ).toEqual([]);
      expect(p.count(/did not end within \d+ ms of its kill/), dump(p.logs)).toBe(0);
      expect(maxListeners).toBeLessThanOrEqual(2 * WORKERS);
      console.log(
        `kill-mid-call: ${kills()} kills in ${ms.toFixed(0)} ms across ${WORKERS} workers (budget ${BUDGET_MS} ms); ` +
          `${accepted} connections reached the target; at most ${maxListeners} sockets listened on the plugin's port at once`,
      );

      const port = p.port;
      await expectContained({
        hostile: p,
        neighbour,
        base,
        cause: /^killed: ran \d+ ms( of CPU)? without returning to poll\.wait \(cpu budget 20 ms\)$/,
        minEnds: MIN_KILLS,
      });
      expect(listenersOn(port), "nothing listens on the plugin's port once it is stopped").toBe(0);
    } finally {
      await withTimeout(new Promise<void>((r) => target.close(() => r())), 5000, 'target close');
    }
  }, 90_000);
});
