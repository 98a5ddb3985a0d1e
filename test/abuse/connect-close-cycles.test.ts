// 100,000 connect/close cycles against echo (100 at a time; half closed
// with a FIN, half with a reset): every connection is accepted and closed
// by the server, the descriptor count never grows past what is in flight,
// comes back exactly to the running server's count, and to the baseline
// after stop.
import { describe, it, expect, afterEach } from 'vitest';
import net from 'node:net';
import { ECHO_WASM, cleanUp, fdBaseline, host, openFds, settleFds, waitFor, withTimeout } from '../helpers/hostile.js';

afterEach(cleanUp);

const TOTAL = 100_000;
const CONCURRENCY = 100;
const TIME_LIMIT_MS = 60_000;

describe('connect/close cycles', () => {
  it(
    `${TOTAL.toLocaleString('en')} connect/close cycles leave no descriptor behind`,
    async () => {
      const baseline = await fdBaseline();
      const p = await host(ECHO_WASM);
      const withServer = openFds();
      let next = 0;
      let errors = 0;
      const errorCodes: Record<string, number> = {};
      let maxFds = 0;
      const checkpoints: number[] = [];
      const t0 = performance.now();
      const lane = async () => {
        while (next < TOTAL && performance.now() - t0 < TIME_LIMIT_MS) {
          const i = next++;
          await new Promise<void>((resolve) => {
            const c = net.connect(p.port, '127.0.0.1', () => {
              if (i % 2) c.resetAndDestroy();
              else c.destroy();
              resolve();
            });
            c.on('error', (e: NodeJS.ErrnoException) => {
              errors++;
              errorCodes[e.code ?? e.message] = (errorCodes[e.code ?? e.message] ?? 0) + 1;
              resolve();
            });
          });
          if (i % 10_000 === 0) {
            const n = openFds();
            checkpoints.push(n - withServer);
            maxFds = Math.max(maxFds, n);
          }
        }
      };
      await withTimeout(Promise.all(Array.from({ length: CONCURRENCY }, lane)), TIME_LIMIT_MS + 10_000, 'cycles');
      const ms = performance.now() - t0;
      expect(next).toBe(TOTAL); // all of them, within the time limit
      expect(errors, JSON.stringify(errorCodes)).toBe(0);
      const settled = await waitFor(() => p.server.stats()[0]!.open === 0 && p.server.stats()[0]!.accepted === TOTAL, 10_000);
      expect(settled, JSON.stringify(p.server.stats()[0])).toBe(true);
      const after = await settleFds(withServer);
      console.log(
        `connect/close: ${TOTAL} cycles in ${(ms / 1000).toFixed(1)} s (${Math.round(TOTAL / (ms / 1000))}/s); ` +
          `descriptors above the running server's at each 10,000: ${checkpoints.join(', ')}; after: ${after - withServer}`,
      );
      expect(after).toBe(withServer);
      // In flight at most: one client socket per lane, plus the server's side of those not closed yet.
      expect(maxFds - withServer).toBeLessThanOrEqual(4 * CONCURRENCY);
      expect(p.server.stats()[0]).toMatchObject({ accepted: TOTAL, open: 0, refused: 0 });
      expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);

      await cleanUp();
      expect(await settleFds(baseline)).toBe(baseline);
    },
    TIME_LIMIT_MS + 30_000,
  );
});
