/**
 * The IOCP backend (AFD poll on a completion port), run for real under wine:
 * `wasmux run dist/plugins/echo.wasm --backend iocp` on Windows' node.exe
 * (see test/helpers/wine.ts), talked to by Linux clients over loopback.
 * Integrity (sha256) at 1 B, 64 KiB and 1 MiB, half-close, 200 concurrent
 * connections, two instances sharing one listener, and both ways of
 * stopping. Skipped, with the reason, when wine is not installed; until the
 * conformance suite covers iocp this is its test.
 *
 * Natively on Linux `--backend iocp` must fail cleanly (exit 2,
 * WASMUX_ERR_BACKEND_UNAVAILABLE), never crash.
 */
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { wasmux } from './helpers/cli.js';
import { startWineServer, wineNode, type WineServer } from './helpers/wine.js';
import {
  closed,
  connect,
  destroyClients,
  echoRoundTrip,
  exchange,
  readExactly,
  runPool,
  sha256,
  writeAll,
  withTimeout,
} from './helpers/server.js';

const KiB = 1024;
const MiB = 1024 * KiB;
// Relative to the repository (the children's working directory): the same path works under wine.
const ECHO = 'dist/plugins/echo.wasm';
const wine = wineNode();
const skip = 'skip' in wine ? wine.skip : null;

describe('iocp natively on Linux', () => {
  it.skipIf(process.platform !== 'linux')('refuses --backend iocp with WASMUX_ERR_BACKEND_UNAVAILABLE (exit 2, no crash)', async () => {
    const r = await wasmux(['run', ECHO, '--backend', 'iocp', '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(2);
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(
      /^wasmux: error WASMUX_ERR_BACKEND_UNAVAILABLE: backend iocp is not available: IOCP exists only on Windows \(this is linux\)\n$/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(r.stdout).toBe('');
  });
});

describe.skipIf(skip !== null)(`iocp under wine${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let server: WineServer;

  beforeAll(async () => {
    // A short drain: the stop test below keeps an idle connection open.
    server = await startWineServer([ECHO, '--backend', 'iocp', '--listen', '127.0.0.1:0', '--drain-timeout', '300']);
  }, 90_000);

  afterEach(() => {
    destroyClients();
  });

  afterAll(async () => {
    destroyClients();
    await server?.stop('SIGKILL');
  });

  it('starts on the iocp backend', () => {
    expect(server.output().stdout).toMatch(
      /^wasmux: echo listening on 127\.0\.0\.1:\d+ \(backend iocp, 1 worker, sha256 [0-9a-f]{64}\)\n$/,
    );
    expect(server.output().stderr).not.toMatch(/warn|error/);
  });

  it.each([
    ['1 B', 1],
    ['64 KiB', 64 * KiB],
    ['1 MiB', MiB],
  ])(
    'echoes %s of random data unchanged (sha256)',
    async (_name, size) => {
      const data = randomBytes(size);
      const echoed = await echoRoundTrip(server.port, data, 30_000);
      expect(echoed.length).toBe(size);
      expect(sha256(echoed)).toBe(sha256(data));
    },
    40_000,
  );

  it('flow control: a client that writes 8 MiB before reading gets all of it back (write re-arm, cancel and re-send)', async () => {
    const data = randomBytes(8 * MiB);
    // Paused: the client reads nothing until the server has had to stop
    // sending (its writes would-block, it asks for writable as well).
    const sock = await connect(server.port, { paused: true });
    const written = new Promise<void>((resolve, reject) => sock.write(data, (e) => (e ? reject(e) : resolve())));
    written.catch(() => {}); // observed below
    await new Promise((r) => setTimeout(r, 500));
    const echoed = await readExactly(sock, data.length, 30_000);
    await withTimeout(written, 10_000, 'client write');
    expect(sha256(echoed)).toBe(sha256(data));
    sock.destroy();
  }, 45_000);

  it('costs no CPU while idle (the wait blocks; no re-arm loop)', async () => {
    const idle = await connect(server.port); // a registered connection with nothing to say
    const before = cpuMs(server.child.pid!);
    await new Promise((r) => setTimeout(r, 1_000));
    const used = cpuMs(server.child.pid!) - before;
    expect(used).toBeLessThan(100);
    idle.destroy();
  }, 10_000);

  it('ping-pongs 200 messages in order on one connection', async () => {
    const sock = await connect(server.port);
    for (let i = 0; i < 200; i++) {
      const msg = Buffer.from(`message ${i} ${'x'.repeat(i % 50)}`);
      expect((await exchange(sock, msg)).toString()).toBe(msg.toString());
    }
    sock.destroy();
  }, 30_000);

  it('half-close: echoes everything sent before the client shut down its side, then closes', async () => {
    const data = randomBytes(256 * KiB);
    const sock = await connect(server.port, { allowHalfOpen: true });
    const reading = readExactly(sock, data.length, 20_000);
    await writeAll(sock, data);
    sock.end(); // FIN: the server reads end of stream with its echo still to send
    const echoed = await reading;
    expect(sha256(echoed)).toBe(sha256(data));
    // Then the server closes its side: end of stream for the client.
    const ended = new Promise<void>((resolve) => {
      sock.once('end', () => resolve());
      sock.resume();
    });
    await withTimeout(ended, 10_000, 'end of stream from the server');
    await closed(sock);
  }, 30_000);

  it('serves 200 concurrent connections (4 KiB each, all open at once)', async () => {
    const n = 200;
    const socks = await Promise.all(Array.from({ length: n }, () => connect(server.port, { timeoutMs: 20_000 })));
    const payloads = socks.map(() => randomBytes(4 * KiB));
    const echoed = await Promise.all(socks.map((s, i) => exchange(s, payloads[i]!, 30_000)));
    for (let i = 0; i < n; i++) expect(sha256(echoed[i]!)).toBe(sha256(payloads[i]!));
    socks.forEach((s) => s.destroy());
  }, 60_000);

  it('survives clients that reset mid-stream and keeps serving', async () => {
    await runPool(20, 10, async () => {
      const sock = await connect(server.port);
      sock.write(randomBytes(32 * KiB));
      sock.resetAndDestroy();
    });
    const data = randomBytes(10 * KiB);
    expect(sha256(await echoRoundTrip(server.port, data))).toBe(sha256(data));
  }, 30_000);

  it('two instances share one listener (no SO_REUSEPORT on Windows): every connection is served', async () => {
    const two = await startWineServer([ECHO, '--backend', 'iocp', '--listen', '127.0.0.1:0', '--workers', '2']);
    try {
      expect(two.output().stdout).toMatch(/\(backend iocp, 2 workers, sha256 [0-9a-f]{64}\)/);
      await runPool(40, 8, async () => {
        const data = randomBytes(2 * KiB);
        expect(sha256(await echoRoundTrip(two.port, data))).toBe(sha256(data));
      });
      const end = await two.stop('SIGINT');
      expect(end.code).toBe(0);
      // Each instance reports what it accepted; together, every connection.
      const accepted = [...end.stderr.matchAll(/echo\[\d\] ended: accepted (\d+)/g)].map((m) => Number(m[1]));
      expect(accepted.length).toBe(2);
      expect(accepted.reduce((a, b) => a + b, 0)).toBe(40);
    } finally {
      await two.stop('SIGKILL');
    }
  }, 90_000);

  it('stops on SIGINT (Ctrl-C under wine) through the waker: exit 0, promptly, the port released', async () => {
    const port = server.port;
    const idle = await connect(port); // an open, idle connection holds the stop for the drain (300 ms) only
    const end = await server.stop('SIGINT');
    expect(end.code).toBe(0);
    expect(end.signal).toBeNull();
    expect(end.ms).toBeLessThan(3_000);
    expect(end.stderr).toMatch(/SIGINT/);
    expect(end.stderr).not.toMatch(/terminat|crash/);
    await closed(idle);
    await expectRefused(port);
  }, 30_000);

  it('SIGTERM (no such thing on Windows: wine ends the process at once) still leaves nothing listening soon after', async () => {
    const s = await startWineServer([ECHO, '--backend', 'iocp', '--listen', '127.0.0.1:0']);
    const end = await s.stop('SIGTERM');
    expect(end.signal).toBe('SIGTERM'); // ended by the signal itself: no JS ran
    expect(end.stderr).not.toMatch(/SIGTERM, /); // the CLI's graceful-stop line never appears
    expect(end.ms).toBeLessThan(5_000);
    await expectRefused(s.port);
  }, 90_000);
});

/** CPU time (user + system, ms) of a process and all its threads, from /proc. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
}

/**
 * Connections to `port` are refused (nothing listens there any more) within
 * `withinMs`. Under wine the sockets live in wineserver, which closes a dead
 * process's handles when it notices the death: a moment after the exit.
 */
async function expectRefused(port: number, withinMs = 5_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  let last: string | undefined;
  for (;;) {
    const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(null);
      });
      s.once('error', (e) => resolve(e));
    });
    last = err?.code ?? 'connected';
    if (last === 'ECONNREFUSED' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(last).toBe('ECONNREFUSED');
}
