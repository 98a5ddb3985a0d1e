// Clients that vanish without a FIN. On loopback a peer cannot really
// disappear, so: (1) a reset while idle (resetAndDestroy, SO_LINGER 0);
// (2) a reset while the server has unsent data queued for it (the client
// never read); (3) a peer that just goes silent, with no FIN and no reset,
// which is what a vanished host looks like to the server: only the idle
// timeout can find it. In each case the server closes its end, keeps no
// descriptor, logs nothing alarming and goes on serving.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ECHO_WASM, cleanUp, connect, exchange, fdBaseline, host, openFds, settleFds, sleep, waitFor } from '../helpers/hostile.js';
import { writeAll } from '../helpers/server.js';

afterEach(cleanUp);

const IDLE_MS = 400;

describe('half-open connections', () => {
  it('are cleaned up after a reset while idle, a reset with data queued, and silence (idle timeout)', async () => {
    const baseline = await fdBaseline();
    const p = await host(ECHO_WASM, { policy: { idleTimeoutMs: IDLE_MS, maxSendQueueBytes: 64 * 1024 } });
    const withServer = openFds();
    const open = () => p.server.stats()[0]!.open;

    // 1. Reset while idle: 20 clients, each after one round trip.
    const idle = await Promise.all(Array.from({ length: 20 }, () => connect(p.port)));
    await Promise.all(
      idle.map(async (s, i) => {
        const msg = Buffer.from(`idle ${i}`);
        expect((await exchange(s, msg)).equals(msg)).toBe(true);
      }),
    );
    expect(open()).toBe(20);
    let t = performance.now();
    for (const s of idle) s.resetAndDestroy();
    expect(await waitFor(() => open() === 0, 2000, 5)).toBe(true);
    const resetIdleMs = performance.now() - t;

    // 2. Reset with data queued on the server: a client that wrote 4 MiB and read nothing.
    const hog = await connect(p.port, { paused: true });
    void writeAll(hog, randomBytes(4 * 1048576)).catch(() => {});
    let last = -1;
    for (let i = 0; i < 100; i++) {
      await sleep(50);
      const st = p.server.stats()[0]!;
      if (st.bytesIn === last && st.bytesIn > st.bytesOut) break; // stalled, echo holding data
      last = st.bytesIn;
    }
    const st = p.server.stats()[0]!;
    expect(st.bytesIn).toBeGreaterThan(st.bytesOut);
    t = performance.now();
    hog.resetAndDestroy();
    expect(await waitFor(() => open() === 0, 2000, 5)).toBe(true);
    const resetQueuedMs = performance.now() - t;

    // 3. Silence: connected, then nothing, no FIN, no reset.
    t = performance.now(); // before the accepts that start their idle clocks
    const silent = await Promise.all(Array.from({ length: 5 }, () => connect(p.port)));
    expect(await waitFor(() => open() === 5, 2000)).toBe(true);
    expect(await waitFor(() => open() === 0, IDLE_MS + 2000, 5)).toBe(true);
    const silentMs = performance.now() - t;
    expect(p.server.stats()[0]!.idleClosed).toBe(5);
    for (const s of silent) s.destroy();
    console.log(
      `half-open: server closed its ends ${resetIdleMs.toFixed(0)} ms after 20 idle resets, ${resetQueuedMs.toFixed(0)} ms after ` +
        `a reset with data queued, ${silentMs.toFixed(0)} ms after 5 peers went silent (idleTimeoutMs ${IDLE_MS})`,
    );
    expect(silentMs).toBeGreaterThanOrEqual(IDLE_MS - 50);

    // Nothing left behind in the server; it still serves.
    expect(await settleFds(withServer)).toBe(withServer);
    const sock = await connect(p.port);
    const msg = Buffer.from('after the vanishing acts');
    expect((await exchange(sock, msg)).equals(msg)).toBe(true);
    sock.destroy();
    expect(p.server.exitReasons()).toEqual([null]);
    expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);

    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
