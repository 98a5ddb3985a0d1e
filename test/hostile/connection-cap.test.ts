// More connections than the policy allows (echo with maxConnections 5): the
// first 5 are served; the 6th and later are accepted and closed at once
// (stats().refused counts them; the backlog never fills), with one log line
// for the episode; once a connection ends, a new one is served again. An
// echo plugin served beside it (no cap) keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import type net from 'node:net';
import { ECHO_WASM, Neighbour, cleanUp, connect, dump, endOf, exchange, fdBaseline, host, settleFds, waitFor } from '../helpers/hostile.js';

afterEach(cleanUp);

const CAP = 5;
const EXTRA = 10;

describe('more connections than maxConnections', () => {
  it(`serves the first ${CAP}, closes the next ${EXTRA} at once, logs the cap once, serves again when one leaves; its neighbour keeps echoing`, async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const p = await host(ECHO_WASM, { policy: { maxConnections: CAP } });
    const served: net.Socket[] = [];
    for (let i = 0; i < CAP; i++) {
      served.push(await connect(p.port));
      expect(await waitFor(() => p.server.stats()[0]!.open === i + 1, 5000)).toBe(true);
    }
    const closeMs: number[] = [];
    for (let i = 0; i < EXTRA; i++) {
      const extra = await connect(p.port);
      closeMs.push(await endOf(extra, 2000));
    }
    console.log(
      `connection cap: the ${EXTRA} connections over the cap were closed ${Math.max(...closeMs).toFixed(1)} ms after connecting at most`,
    );
    for (const ms of closeMs) expect(ms).toBeLessThan(1000);
    // The first five were never disturbed.
    await Promise.all(
      served.map(async (s, i) => {
        const msg = Buffer.from(`served ${i}`);
        expect((await exchange(s, msg)).equals(msg)).toBe(true);
      }),
    );
    expect(p.server.stats()[0]).toMatchObject({ open: CAP, accepted: CAP, refused: EXTRA });
    expect(
      p.lines(/connection cap/).map((l) => l.message),
      dump(p.logs),
    ).toEqual([`connection cap reached (maxConnections ${CAP}): closing new connections until some end`]);
    expect(p.lines(/connection cap/)[0]).toMatchObject({ level: 'warn', source: 'echo', instance: 0 });

    // One leaves: the next is served.
    served.shift()!.destroy();
    expect(await waitFor(() => p.server.stats()[0]!.open === CAP - 1, 5000)).toBe(true);
    const late = await connect(p.port);
    const msg = Buffer.from('served after one left');
    expect((await exchange(late, msg)).equals(msg)).toBe(true);
    expect(p.server.stats()[0]).toMatchObject({ open: CAP, accepted: CAP + 1, refused: EXTRA });
    expect(p.server.exitReasons()).toEqual([null]);
    expect(p.logs.filter((l) => l.level === 'error')).toEqual([]);

    expect(await neighbour.finish()).toBeGreaterThan(2);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
