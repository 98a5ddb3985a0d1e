// A connection flood up to the cap (echo with maxConnections 50, 200
// connections opened at once): 50 are served, the other 150 are accepted and
// closed promptly (stats().refused counts them) with one log line, and once
// the 50 leave, new clients are served again.
import { describe, it, expect, afterEach } from 'vitest';
import type net from 'node:net';
import { ECHO_WASM, cleanUp, connect, exchange, fdBaseline, host, settleFds, waitFor } from '../helpers/hostile.js';
import { runPool } from '../helpers/server.js';

afterEach(cleanUp);

const CAP = 50;
const FLOOD = 200;

describe('connection flood', () => {
  it(`serves ${CAP} of ${FLOOD} simultaneous connections, closes the rest promptly, and serves later clients once others leave`, async () => {
    const baseline = await fdBaseline();
    const p = await host(ECHO_WASM, { policy: { maxConnections: CAP } });
    const socks: net.Socket[] = [];
    const closedAfter: number[] = [];
    await runPool(FLOOD, FLOOD, async (i) => {
      const s = await connect(p.port, { timeoutMs: 10_000 });
      socks[i] = s;
      const t = performance.now();
      const done = () => (closedAfter[i] ??= performance.now() - t);
      if (s.destroyed) done();
      s.once('end', done);
      s.once('close', done);
      s.resume();
    });
    expect(
      await waitFor(() => {
        const st = p.server.stats()[0]!;
        return st.open === CAP && st.refused === FLOOD - CAP;
      }, 10_000),
    ).toBe(true);
    expect(await waitFor(() => closedAfter.filter((x) => x !== undefined).length === FLOOD - CAP, 5000)).toBe(true);
    const slowest = Math.max(...closedAfter.filter((x) => x !== undefined));
    console.log(`flood: ${FLOOD - CAP} connections over the cap closed within ${slowest.toFixed(0)} ms of connecting`);
    expect(slowest).toBeLessThan(2000);

    // Exactly the ones still open are served.
    const open = socks.filter((_s, i) => closedAfter[i] === undefined);
    expect(open).toHaveLength(CAP);
    for (const s of open) s.removeAllListeners('data').pause();
    await Promise.all(
      open.map(async (s, i) => {
        const msg = Buffer.from(`served ${i}`);
        expect((await exchange(s, msg)).equals(msg)).toBe(true);
      }),
    );
    expect(p.server.stats()[0]).toMatchObject({ accepted: CAP, refused: FLOOD - CAP, open: CAP });
    expect(p.count(/^connection cap reached/)).toBe(1);

    // They leave; later clients are served.
    for (const s of open) s.destroy();
    expect(await waitFor(() => p.server.stats()[0]!.open === 0, 5000)).toBe(true);
    const later = await Promise.all(Array.from({ length: CAP }, () => connect(p.port)));
    await Promise.all(
      later.map(async (s, i) => {
        const msg = Buffer.from(`later ${i}`);
        expect((await exchange(s, msg)).equals(msg)).toBe(true);
      }),
    );
    expect(p.server.stats()[0]).toMatchObject({ accepted: 2 * CAP, refused: FLOOD - CAP, open: CAP });
    expect(p.server.exitReasons()).toEqual([null]);
    expect(p.logs.filter((l) => l.level === 'error')).toEqual([]);

    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
