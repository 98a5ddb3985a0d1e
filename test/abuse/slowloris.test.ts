// Slowloris: clients that send part of a request and then nothing, or
// nothing at all, to hold connections open. With idleTimeoutMs 300 the
// server shuts each of them down ~300 ms after its last traffic
// (stats().idleClosed counts them) while a normal client, sending every
// 50 ms, is never disturbed.
import { describe, it, expect, afterEach } from 'vitest';
import {
  ECHO_WASM,
  cleanUp,
  connect,
  endOf,
  exchange,
  fdBaseline,
  host,
  readUntil,
  settleFds,
  sleep,
  waitFor,
} from '../helpers/hostile.js';

afterEach(cleanUp);

const IDLE_MS = 300;

describe('slowloris', () => {
  it(`shuts down a client that sends a partial line and then nothing, and one that sends nothing, ~${IDLE_MS} ms after their last traffic; a normal client is unaffected`, async () => {
    const baseline = await fdBaseline();
    const p = await host(ECHO_WASM, { policy: { idleTimeoutMs: IDLE_MS } });

    // A normal client, busy all along.
    const normal = await connect(p.port);
    let rounds = 0;
    let normalError: string | null = null;
    let going = true;
    const busy = (async () => {
      while (going) {
        const msg = Buffer.from(`normal ${rounds}\n`);
        try {
          if (!(await exchange(normal, msg, 2000)).equals(msg)) throw new Error('wrong echo');
        } catch (e) {
          normalError = (e as Error).message;
          return;
        }
        rounds++;
        await sleep(50);
      }
    })();

    // The slow ones: a partial request line (echoed back: their last traffic), and a silent one.
    // Each stamp is taken before its traffic: the server's own last traffic comes after it.
    const partial = await connect(p.port);
    const lastPartial = performance.now();
    partial.write('GET / HTTP/1.1\r\nHost: exa');
    await readUntil(partial, /Host: exa$/);
    const lastSilent = performance.now();
    const silent = await connect(p.port);
    expect(await waitFor(() => p.server.stats()[0]!.open === 3, 5000)).toBe(true);

    const [partialMs, silentMs] = await Promise.all([
      endOf(partial, 5000).then(() => performance.now() - lastPartial),
      endOf(silent, 5000).then(() => performance.now() - lastSilent),
    ]);
    console.log(
      `slowloris: idle connections shut down ${partialMs.toFixed(0)} ms (partial line) and ${silentMs.toFixed(0)} ms (silent) after their last traffic (idleTimeoutMs ${IDLE_MS})`,
    );
    for (const ms of [partialMs, silentMs]) {
      expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 5); // 5: the two threads' clocks, rounded
      expect(ms).toBeLessThan(IDLE_MS + 1_500);
    }
    expect(await waitFor(() => p.server.stats()[0]!.open === 1, 5000)).toBe(true);

    // The normal client went on through all of it, and goes on well past the timeout.
    const r0 = rounds;
    await sleep(3 * IDLE_MS);
    expect(await waitFor(() => rounds >= r0 + 5 || normalError !== null, 5000)).toBe(true);
    going = false;
    await busy;
    expect(normalError).toBeNull();
    expect(normal.destroyed).toBe(false);
    expect(p.server.stats()[0]).toMatchObject({ idleClosed: 2, open: 1, accepted: 3 });
    expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);

    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
