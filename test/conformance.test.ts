/**
 * One contract, every backend. The same plugin files (dist/plugins/echo.wasm
 * and four test plugins in dist/test-plugins/, hashed once before anything
 * runs) are served by `wasmux run --backend <name>`, a separate process per
 * server, on every backend that can run here (test/helpers/backends.ts: the
 * others are skipped with their reason in the title), through the same cases:
 *
 *   echo integrity 1 B - 8 MiB, half-close, client resets, 1,000 concurrent
 *   connections, an accept burst of 500, stop by SIGTERM (SIGINT under wine)
 *   through the waker (all on the echo plugin; after each case the server
 *   has logged no warning and its descriptors are back to their baseline,
 *   where they can be counted); writable interest that must not spin
 *   (no-spin); deregister and register again (reregister); wait timeouts
 *   (wait-timeouts); handles after close (handle-reuse).
 *
 * Each backend's run writes a transcript: what the client observed, timings
 * reduced to pass/fail buckets, and the test plugins' own log lines. The
 * last test requires the transcripts of every backend that ran to be
 * identical: same plugins, same behaviour, whatever the OS API underneath.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type net from 'node:net';
import {
  backendTargets,
  kqueueStandInTarget,
  startServer,
  startWasmux,
  stopAll,
  type BackendTarget,
  type WasmuxProcess,
} from './helpers/backends.js';
import { ROOT } from './helpers/cli.js';
import {
  connect,
  exchange,
  echoRoundTrip,
  sha256,
  runPool,
  closed,
  destroyClients,
  withTimeout,
  waitFor,
  sleep,
  openFds,
  warmUpLibuv,
} from './helpers/server.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const ECHO = 'dist/plugins/echo.wasm';
const NO_SPIN = 'dist/test-plugins/no-spin.wasm';
const REREGISTER = 'dist/test-plugins/reregister.wasm';
const WAIT_TIMEOUTS = 'dist/test-plugins/wait-timeouts.wasm';
const HANDLE_REUSE = 'dist/test-plugins/handle-reuse.wasm';

/** CPU a server may use in one second while its only connection sits idle with writable interest. */
const IDLE_CPU_MS = 100;
/** How far a wait may end from its timeout. */
const TIMEOUT_SLACK_MS = 20;
/** Stop signal to exit, for the whole process (the in-process stop is held to 100 ms by waker.test.ts). */
const STOP_MS = 1500;

const PLUGINS = [ECHO, NO_SPIN, REREGISTER, WAIT_TIMEOUTS, HANDLE_REUSE];

/**
 * Policy flags for every server here. The suite holds backends to the poll
 * contract, not the CPU watchdog (test/hostile/ does that): on two loaded
 * cores, under wine, echo taking a burst of 1,000 connections in one turn of
 * its loop can pass the default 200 ms budget and be restarted mid-case.
 */
const POLICY = ['--cpu-budget', '5000'];

function hashPlugins(): Record<string, string> {
  return Object.fromEntries(PLUGINS.map((f) => [f, sha256(readFileSync(join(ROOT, f)))]));
}

// Once, before any backend runs: every backend must run these very bytes.
const HASHES = hashPlugins();
const targets = backendTargets();
const transcripts = new Map<string, string[]>();

/** The plugin's own log lines (the host's, such as `run returned...`, are not the plugin's: the exit code says how run ended). */
const pluginLines = (p: WasmuxProcess) => p.pluginLines();
/** Their message part (without `name[instance] guest level: `). */
const messages = (p: WasmuxProcess) => pluginLines(p).map((l) => l.replace(/^\S+ guest \w+: /, ''));
/** Log lines at warn or error, host's or plugin's. */
const problems = (p: WasmuxProcess) =>
  p
    .stderr()
    .split('\n')
    .filter((l) => /^\S+ (guest )?(warn|error): /.test(l));

function send(sock: net.Socket, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => sock.write(data, (e) => (e ? reject(e) : resolve())));
}

/**
 * Ends `sock` after `data` with both in one TCP segment, so that they reach
 * the server in one edge: TCP_CORK holds the data until the FIN joins it
 * (Node's end() makes the shutdown a loop turn after the write, which the
 * server usually sees as a second edge).
 */
async function endInOneSegment(sock: net.Socket, data: string): Promise<void> {
  const koffi = (await import('koffi')).default;
  const setsockopt = koffi.load('libc.so.6').func('int setsockopt(int fd, int level, int name, void *value, uint32_t len)');
  const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
  const on = Buffer.alloc(4);
  on.writeInt32LE(1);
  expect(setsockopt(fd, 6 /* IPPROTO_TCP */, 3 /* TCP_CORK */, on, 4), 'setsockopt TCP_CORK').toBe(0);
  sock.end(data);
}

/**
 * no-spin: a connection registered readable|writable and never written to
 * costs no CPU while idle, and still brings its data and end of stream
 * (sent together; `oneSegment`: in one TCP segment). Returns the transcript lines.
 */
async function noSpinCase(target: BackendTarget, oneSegment = false): Promise<string[]> {
  const server = await startServer(target, NO_SPIN, POLICY);
  const sock = await connect(server.port);
  await server.waitFor(/connection 1: registered/);
  await sleep(200); // the first events come and go
  const before = server.cpuMs();
  await sleep(1000);
  const used = server.cpuMs() - before;
  expect(used, 'server CPU ms over one idle second').toBeLessThan(IDLE_CPU_MS);
  // Edges still come: data and end of stream are reported.
  if (oneSegment) await endInOneSegment(sock, 'hello');
  else sock.end('hello');
  await server.waitFor(/connection 1: .* end of stream/);
  const end = await server.stop(target.stopSignal);
  expect(end.code).toBe(0);
  expect(messages(server)).toEqual([
    'connection 1: registered readable|writable',
    'connection 1: 5 bytes, then end of stream; at most 4 events',
  ]);
  return [`no-spin: under ${IDLE_CPU_MS} ms CPU in an idle second`, ...pluginLines(server)];
}

/**
 * reregister: reregister without reading reports the readiness again;
 * deregister silences a handle while data arrives; registering again
 * reports the pending data. Returns the transcript lines.
 */
async function reregisterCase(target: BackendTarget): Promise<string[]> {
  const server = await startServer(target, REREGISTER, POLICY);
  const a = await connect(server.port);
  await server.waitFor(/a: registered for readable/);
  await send(a, 'hello');
  await server.waitFor(/a: deregister: ok/);
  await send(a, 'world!');
  const b = await connect(server.port);
  await send(b, 'go');
  const exit = await withTimeout(server.exited, 10_000, 'reregister plugin');
  expect(exit.code, server.stderr()).toBe(0);
  expect(messages(server)).toEqual([
    'a: registered for readable',
    'a: readable; reregistered without reading: ok',
    'a: readable again after reregister; read 5 bytes',
    'a: deregister: ok',
    'a: deregister again: closed; reregister while deregistered: closed',
    'a: 0 events in 3 waits while deregistered with data pending',
    'a: register again: ok',
    'a: readable after register; read 6 bytes',
  ]);
  return pluginLines(server);
}

afterAll(async () => {
  destroyClients();
  await stopAll();
});

for (const target of targets) {
  const title = target.skipReason === null ? `backend ${target.label}` : `backend ${target.label} — skipped: ${target.skipReason}`;

  describe.skipIf(target.skipReason !== null)(title, () => {
    const log: string[] = [];
    let clientFds = 0;

    beforeAll(async () => {
      transcripts.set(target.name, log);
      await warmUpLibuv();
      clientFds = openFds();
    });

    afterEach(() => {
      destroyClients();
    });

    describe('echo plugin', () => {
      let server: WasmuxProcess;
      let baseFds = 0;
      let reported = 0; // warnings already failed a case

      /**
       * After a case: the server logged no warning or error, and its
       * descriptors settle back at their baseline (every connection closed
       * on its side; only where they can be counted).
       */
      async function expectSettled(what: string): Promise<void> {
        if (target.socketFds) {
          await waitFor(() => server.fdCount() === baseFds, 10_000, 25);
          expect(server.fdCount(), `server descriptors after ${what}`).toBe(baseFds);
        }
        const all = problems(server);
        const fresh = all.slice(reported);
        reported = all.length;
        expect(fresh, `server warnings during ${what}`).toEqual([]);
      }

      beforeAll(async () => {
        server = await startServer(target, ECHO, POLICY);
        baseFds = server.fdCount();
        const hello = Buffer.from('hello');
        expect((await echoRoundTrip(server.port, hello)).equals(hello)).toBe(true);
        await expectSettled('a first connection');
      });

      afterAll(async () => {
        await server?.stop('SIGKILL');
      });

      it.each([
        ['1 B', 1],
        ['100 B', 100],
        ['64 KiB', 64 * KiB],
        ['1 MiB', MiB],
        ['8 MiB', 8 * MiB],
      ])(
        'echoes %s unchanged',
        async (name, size) => {
          const data = randomBytes(size);
          const echoed = await echoRoundTrip(server.port, data, 30_000);
          expect(echoed.length).toBe(size);
          expect(sha256(echoed)).toBe(sha256(data));
          await expectSettled(`echoing ${name}`);
          log.push(`echo ${name}: sha256 matches`);
        },
        40_000,
      );

      it.each([
        ['5 B', 5],
        ['1 MiB', MiB],
      ])(
        'half-close (%s): the whole echo, then end of stream',
        async (name, size) => {
          const data = randomBytes(size);
          const sock = await connect(server.port, { allowHalfOpen: true });
          const chunks: Buffer[] = [];
          let got = 0;
          let endAt = -1;
          const done = new Promise<boolean>((resolve, reject) => {
            sock.on('data', (d: Buffer) => {
              chunks.push(d);
              got += d.length;
            });
            sock.once('end', () => (endAt = got));
            sock.once('error', reject);
            sock.once('close', resolve);
          });
          sock.end(data);
          expect(await withTimeout(done, 20_000, `half-close (${got} of ${size} bytes back)`)).toBe(false);
          expect(endAt).toBe(size);
          expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
          await expectSettled(`half-close ${name}`);
          log.push(`half-close ${name}: whole echo, then end of stream`);
        },
        30_000,
      );

      it('survives client resets (mid-request, mid-response, 50 at once) and serves the next client', async () => {
        // Reset right after sending.
        const a = await connect(server.port);
        await send(a, randomBytes(100));
        a.resetAndDestroy();
        await closed(a);
        // Reset while the server's writes are blocked: the client reads nothing.
        const b = await connect(server.port, { paused: true });
        b.write(randomBytes(8 * MiB));
        await sleep(300);
        b.resetAndDestroy();
        await closed(b);
        // Many at once, mid-transfer.
        const many = await Promise.all(Array.from({ length: 50 }, () => connect(server.port)));
        many.forEach((s, i) => s.write(randomBytes(1 + i * 997)));
        await sleep(20);
        many.forEach((s) => s.resetAndDestroy());
        await Promise.all(many.map((s) => closed(s)));

        const data = randomBytes(256 * KiB);
        expect(sha256(await echoRoundTrip(server.port, data))).toBe(sha256(data));
        await expectSettled('resets');
        expect(server.child.exitCode).toBe(null);
        log.push('resets: every reset connection closed; the next client served');
      }, 30_000);

      it('serves 1,000 concurrent connections, each doing 3 round trips', async () => {
        const CONNS = 1000;
        const socks: net.Socket[] = [];
        await runPool(CONNS, 200, async (i) => {
          socks[i] = await connect(server.port, { timeoutMs: 15_000 });
        });
        // All accepted and held at once: one descriptor each in the server.
        if (target.socketFds) {
          await waitFor(() => server.fdCount() === baseFds + CONNS, 10_000, 25);
          expect(server.fdCount()).toBe(baseFds + CONNS);
        }
        let ok = 0;
        await withTimeout(
          Promise.all(
            socks.map(async (sock, i) => {
              for (let r = 0; r < 3; r++) {
                const msg = randomBytes(8 + ((i * 7 + r * 131) % 2048));
                msg.writeUInt32BE(i, 0);
                msg.writeUInt32BE(r, 4);
                if (!(await exchange(sock, msg, 20_000)).equals(msg)) throw new Error(`connection ${i} round ${r}: wrong echo`);
                ok++;
              }
            }),
          ),
          30_000,
          '1,000 connections x 3 round trips',
        );
        expect(ok).toBe(3 * CONNS);
        socks.forEach((s) => s.destroy());
        await expectSettled('1,000 connections');
        log.push('1,000 concurrent connections: all held at once, 3,000 round trips correct');
      }, 50_000);

      it('accepts a burst of 500 connects fired at once and serves every one', async () => {
        const BURST = 500;
        const socks = await withTimeout(
          Promise.all(Array.from({ length: BURST }, () => connect(server.port, { timeoutMs: 15_000 }))),
          20_000,
          'burst of connects',
        );
        const served = await Promise.all(
          socks.map(async (s, i) => {
            const msg = Buffer.from(`burst ${i}`);
            return (await exchange(s, msg, 15_000)).equals(msg);
          }),
        );
        expect(served.filter(Boolean).length).toBe(BURST);
        socks.forEach((s) => s.destroy());
        await expectSettled('the burst');
        log.push(`accept burst: ${BURST} of ${BURST} served`);
      }, 40_000);

      it(`stops on ${target.stopSignal} through the waker: exit 0, promptly, no thread terminated`, async () => {
        const end = await server.stop(target.stopSignal);
        expect(end.code).toBe(0);
        expect(end.ms).toBeLessThan(STOP_MS);
        expect(server.stderr()).not.toMatch(/terminating its thread/);
        log.push(`stop signal: exit 0 within ${STOP_MS} ms, woken out of its wait`);
      });
    });

    it('writable interest that is never used does not make wait() spin', async () => {
      log.push(...(await noSpinCase(target)));
    }, 20_000);

    it('deregister silences a handle while data arrives; registering again reports the pending data', async () => {
      log.push(...(await reregisterCase(target)));
    }, 20_000);

    it(`wait with nothing registered never ends early, and ends within ${TIMEOUT_SLACK_MS} ms of its timeout (0, 10, 50, 200 ms)`, async () => {
      const proc = startWasmux(target, ['run', WAIT_TIMEOUTS, '--backend', target.name, '--listen', '127.0.0.1:0', ...POLICY]);
      const exit = await withTimeout(proc.exited, 20_000, 'wait-timeouts plugin');
      expect(exit.code, proc.stderr()).toBe(0);
      const waits = messages(proc)
        .map((m) => /^wait (\d+) ms: (\d+) events in (\d+) us$/.exec(m))
        .filter((m) => m !== null);
      expect(waits.map((m) => Number(m[1]))).toEqual([0, 0, 0, 10, 10, 10, 50, 50, 50, 200, 200, 200]);
      // Early is a bug at any load (1 ms: the OS timers' granularity). Late is
      // what a busy machine does to any timer (the guest's thread was not
      // running), so the bound on lateness holds for the quickest of each three.
      const took = new Map<number, number[]>();
      for (const [, t, n, us] of waits) {
        const ms = Number(us) / 1000;
        expect(Number(n), `wait ${t} ms returned events`).toBe(0);
        expect(ms, `wait ${t} ms took ${ms} ms`).toBeGreaterThanOrEqual(Number(t) - 1);
        took.set(Number(t), [...(took.get(Number(t)) ?? []), ms]);
      }
      for (const [t, all] of took) {
        const quickest = Math.min(...all);
        expect(quickest - t, `wait ${t} ms took ${all.join(', ')} ms`).toBeLessThanOrEqual(TIMEOUT_SLACK_MS);
        // The transcript is compared across backends: what held, not the times measured.
        log.push(`wait ${t} ms: no events, never early, the quickest of ${all.length} within +${TIMEOUT_SLACK_MS} ms`);
      }
    }, 30_000);

    it('a closed handle gets bad-handle for every call; the next handle in its slot differs and works', async () => {
      const server = await startServer(target, HANDLE_REUSE, POLICY);
      const first = await connect(server.port);
      await server.waitFor(/first: accepted and registered/);
      await send(first, 'x');
      await server.waitFor(/old handle after close/);
      const second = await connect(server.port);
      const ping = Buffer.from('ping');
      expect((await exchange(second, ping)).equals(ping)).toBe(true);
      second.end();
      const exit = await withTimeout(server.exited, 10_000, 'handle-reuse plugin');
      expect(exit.code, server.stderr()).toBe(0);
      expect(messages(server)).toEqual([
        'first: accepted and registered: ok',
        'first: close: ok',
        'old handle after close: recv bad-handle, send bad-handle, register bad-handle, deregister bad-handle, close bad-handle',
        'second: same slot yes, same handle value no, register: ok',
        "second: echoed 4 bytes; events for the closed handle's token: 0",
      ]);
      log.push(...pluginLines(server));
    }, 20_000);

    it('ran the very plugin files hashed at the start', () => {
      expect(hashPlugins()).toEqual(HASHES);
      log.push(...Object.entries(HASHES).map(([file, hash]) => `${file} sha256 ${hash}`));
    });

    it('left no client socket open in this process', async () => {
      destroyClients();
      await waitFor(() => openFds() === clientFds, 5_000, 25);
      expect(openFds()).toBe(clientFds);
    });
  });
}

// libkqueue 2.7.0 on Linux departs from BSD in two ways the kqueue backend
// must survive; the stand-in's libkqueue mode reproduces both, with
// libkqueue's 32-byte struct kevent: (a) a write filter added after the
// read filter drops EV_EOF when data and FIN arrive in one edge (no-spin
// registers both and must see its end of stream), (b) EV_ADD on a
// registered filter does not re-evaluate it (reregister must report again
// what it did not read). The backend adds the write filter first and
// reregisters by EV_DELETE and EV_ADD.
const libkqueue = kqueueStandInTarget(32, 'libkqueue');

describe.skipIf(libkqueue.skipReason !== null)(
  `backend ${libkqueue.label}${libkqueue.skipReason === null ? '' : ` — skipped: ${libkqueue.skipReason}`}`,
  () => {
    afterEach(() => {
      destroyClients();
    });

    it('no-spin: data and end of stream in one segment are both reported', async () => {
      await noSpinCase(libkqueue, true);
    }, 20_000);

    it('reregister: readiness present at reregister is reported again', async () => {
      await reregisterCase(libkqueue);
    }, 20_000);
  },
);

describe('every backend that ran', () => {
  const ran = targets.filter((t) => t.skipReason === null).map((t) => t.name);

  it(`produced the same transcript (${ran.join(', ') || 'none'})`, () => {
    expect(ran.length).toBeGreaterThan(0);
    const reference = transcripts.get(ran[0]!);
    expect(reference?.length).toBeGreaterThan(0);
    for (const name of ran.slice(1)) expect(transcripts.get(name), `${name} against ${ran[0]}`).toEqual(reference);
  });
});
