// The kqueue backend: struct kevent encoding per layout (macOS 32 bytes,
// FreeBSD 12+ 64 bytes), checked against literal bytes; `--backend kqueue`
// refused clearly where there is no kqueue; the host's probe of a kqueue
// library's layout, on the stand-in built both ways; and echo end to end
// through the CLI and through serve() on the OS's kqueue, on the library in
// WASMUX_KQUEUE_LIBRARY (e.g. libkqueue on Linux), or else on Linux on the
// stand-in with its 32-byte struct kevent (test/stand-ins/kqueue/), which
// this file's process then names in WASMUX_KQUEUE_LIBRARY (each test file
// has its own process; the servers started here inherit it).
import { describe, it, expect, afterEach } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  EVFILT_READ,
  EVFILT_WRITE,
  EV_ADD,
  EV_CLEAR,
  EV_EOF,
  EV_ERROR,
  EV_RECEIPT,
  FREEBSD,
  KeventList,
  MACOS,
} from '../dist/host/ffi/kevent.js';
import { CLI, ROOT, startRun } from './helpers/cli.js';
import { closed, connect, destroyClients, echoRoundTrip, sha256, startEcho, totals, waitFor, withTimeout } from './helpers/server.js';
import { QUIRKS_ENV, kqueueStandIn } from './stand-ins/kqueue/build.js';

const hex = (b: Buffer) => b.toString('hex');
const ZERO_32 = '00'.repeat(32);

describe('struct kevent, macOS layout (32 bytes, EVFILT_USER -10)', () => {
  it('encodes a change field by field at the xnu offsets', () => {
    expect(MACOS.size).toBe(32);
    expect(MACOS.EVFILT_USER).toBe(-10);
    const l = new KeventList(MACOS.size, 2);
    expect(l.bytes.length).toBe(64);
    l.set(0, 7, EVFILT_READ, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, 0x12345678);
    l.set(1, 0x77616b65, MACOS.EVFILT_USER, 0, 0x01000000, 0, 0);
    expect(hex(l.bytes)).toBe(
      // ident          filter flags fflags   data             udata
      '0700000000000000' +
        'ffff' +
        '6100' +
        '00000000' +
        '0000000000000000' +
        '7856341200000000' +
        '656b617700000000' +
        'f6ff' +
        '0000' +
        '00000001' +
        '0000000000000000' +
        '0000000000000000',
    );
  });

  it('decodes an event the kernel wrote', () => {
    const l = new KeventList(MACOS.size, 1);
    Buffer.from('0500000001000000' + 'feff' + '2080' + '36000000' + 'ffffffffffffffff' + 'efbeadde00000000', 'hex').copy(l.bytes);
    expect(l.ident(0)).toBe(2 ** 32 + 5);
    expect(l.filter(0)).toBe(EVFILT_WRITE);
    expect(l.flags(0)).toBe(EV_EOF | EV_CLEAR);
    expect(l.fflags(0)).toBe(54); // ECONNRESET on the BSDs
    expect(l.data(0)).toBe(-1);
    expect(l.udata(0)).toBe(0xdeadbeef);
  });
});

describe('struct kevent, FreeBSD 12+ layout (64 bytes: ext[4] appended, EVFILT_USER -11)', () => {
  it('encodes the same fields at the same offsets, zeroes ext, and strides by 64', () => {
    expect(FREEBSD.size).toBe(64);
    expect(FREEBSD.EVFILT_USER).toBe(-11);
    const l = new KeventList(FREEBSD.size, 2);
    l.bytes.fill(0xaa); // ext must not keep what was there
    l.set(0, 7, EVFILT_READ, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, 0x12345678);
    l.set(1, 9, EVFILT_WRITE, EV_ADD | EV_CLEAR | EV_RECEIPT, 0, 0, 0x12345678);
    expect(hex(l.bytes)).toBe(
      '0700000000000000' +
        'ffff' +
        '6100' +
        '00000000' +
        '0000000000000000' +
        '7856341200000000' +
        ZERO_32 +
        '0900000000000000' +
        'feff' +
        '6100' +
        '00000000' +
        '0000000000000000' +
        '7856341200000000' +
        ZERO_32,
    );
  });

  it('decodes a receipt of a failed change (EV_ERROR, errno in data) at the second slot', () => {
    const l = new KeventList(FREEBSD.size, 2);
    Buffer.from(`${'00'.repeat(64)}0c00000000000000ffff61400000000009000000000000000100000000000000${'11'.repeat(32)}`, 'hex').copy(
      l.bytes,
    );
    expect(l.ident(1)).toBe(12);
    expect(l.filter(1)).toBe(EVFILT_READ);
    expect(l.flags(1)).toBe(EV_ADD | EV_CLEAR | EV_RECEIPT | EV_ERROR);
    expect(l.data(1)).toBe(9); // EBADF
    expect(l.udata(1)).toBe(1);
  });
});

// Runs the CLI with the environment given (not this process's: the variable
// under test must be absent whatever the caller set).
function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

const hasKqueue = process.platform === 'darwin' || process.platform === 'freebsd';
const standIn = kqueueStandIn();
const userLibrary = process.env.WASMUX_KQUEUE_LIBRARY;
if (!hasKqueue && !userLibrary && 'libraries' in standIn) {
  process.env.WASMUX_KQUEUE_LIBRARY = standIn.libraries[32];
  delete process.env[QUIRKS_ENV];
}

describe.skipIf(hasKqueue)('--backend kqueue without a kqueue', () => {
  it('is refused with WASMUX_ERR_BACKEND_UNAVAILABLE, naming WASMUX_KQUEUE_LIBRARY', async () => {
    const env = { ...process.env };
    delete env.WASMUX_KQUEUE_LIBRARY;
    const r = await runCli(['run', 'dist/plugins/echo.wasm', '--backend', 'kqueue', '--listen', '127.0.0.1:0'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('WASMUX_ERR_BACKEND_UNAVAILABLE');
    expect(r.stderr).toContain('WASMUX_KQUEUE_LIBRARY');
  });

  it('a library that is not there is refused the same way, with its path', async () => {
    const env = { ...process.env, WASMUX_KQUEUE_LIBRARY: '/nonexistent/libkqueue.so' };
    const r = await runCli(['run', 'dist/plugins/echo.wasm', '--backend', 'kqueue', '--listen', '127.0.0.1:0'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('WASMUX_ERR_BACKEND_UNAVAILABLE');
    expect(r.stderr).toContain('/nonexistent/libkqueue.so');
  });
});

describe.skipIf('skip' in standIn)(`the host's probe of a kqueue library${'skip' in standIn ? ` — skipped: ${standIn.skip}` : ''}`, () => {
  // kqueue-lib.ts at load, in a process of its own per library: the flavour it settles on.
  const probe = (library: string) =>
    JSON.parse(
      execFileSync(
        process.execPath,
        ['--input-type=module', '-e', "const m = await import('./dist/host/ffi/kqueue-lib.js'); console.log(JSON.stringify(m.flavour))"],
        { cwd: ROOT, encoding: 'utf8', env: { ...process.env, WASMUX_KQUEUE_LIBRARY: library, WASMUX_KQUEUE_LAYOUT: '' } },
      ),
    ) as { size: number; EVFILT_USER: number };

  it('measures the stand-in built with a 64-byte struct kevent (FreeBSD 12+) as 64, and with a 32-byte one (libkqueue, macOS) as 32', () => {
    if (!('libraries' in standIn)) throw new Error('unreachable');
    expect(probe(standIn.libraries[64])).toEqual(expect.objectContaining({ size: 64, EVFILT_USER: -11 }));
    expect(probe(standIn.libraries[32])).toEqual(expect.objectContaining({ size: 32, EVFILT_USER: -11 }));
  });
});

const e2eLibrary = hasKqueue
  ? "the OS's kqueue"
  : userLibrary
    ? userLibrary
    : 'libraries' in standIn
      ? 'the stand-in, 32-byte struct kevent'
      : null;
const e2eSkip =
  e2eLibrary !== null
    ? null
    : `no kqueue here: ${process.platform} has none, WASMUX_KQUEUE_LIBRARY is not set and ${'skip' in standIn ? standIn.skip : ''}`;

describe.skipIf(e2eSkip !== null)(`kqueue end to end (${e2eLibrary ?? `skipped: ${e2eSkip}`})`, () => {
  afterEach(() => {
    destroyClients();
  });

  it('wasmux run --backend kqueue echoes, and stops on SIGTERM', async () => {
    const run = await startRun(['dist/plugins/echo.wasm', '--backend', 'kqueue', '--listen', '127.0.0.1:0']);
    try {
      expect(run.output().stdout).toContain('(backend kqueue, 1 worker, sha256 ');
      const got = await echoRoundTrip(run.port, Buffer.from('hello over kqueue\n'));
      expect(got.toString()).toBe('hello over kqueue\n');
    } finally {
      const f = await run.stop('SIGTERM');
      expect(f.code).toBe(0);
    }
  });

  it('serve(): 4 MiB both ways at once (writable edges under backpressure), half-close, 200 connections, stop', async () => {
    const echo = await startEcho({ backend: 'kqueue' });
    try {
      expect(echo.server.backend).toBe('kqueue');
      const big = randomBytes(4 * 1024 * 1024);
      expect(sha256(await echoRoundTrip(echo.port, big, 30_000))).toBe(sha256(big));

      // Half-close: the client ends its side (read-closed on the server),
      // the server echoes what it got, then ends too.
      const s = await connect(echo.port, { allowHalfOpen: true });
      const got: Buffer[] = [];
      const ended = new Promise<void>((r) => {
        s.on('data', (d: Buffer) => got.push(d));
        s.once('end', () => r());
      });
      s.end('half-closed ping');
      await withTimeout(ended, 10_000, 'end of stream after the half-close');
      expect(Buffer.concat(got).toString()).toBe('half-closed ping');
      expect(await closed(s)).toBe(false); // closed, without error

      const many = await Promise.all(Array.from({ length: 200 }, (_, i) => echoRoundTrip(echo.port, Buffer.from(`c${i};`))));
      many.forEach((b, i) => expect(b.toString()).toBe(`c${i};`));
      expect(await waitFor(() => totals(echo.server).open === 0)).toBe(true);

      // The waker: stop wakes the instance out of its wait.
      const t = performance.now();
      await echo.stop();
      expect(performance.now() - t).toBeLessThan(100);
      expect(echo.server.exitReasons()).toEqual(['stopped']);
    } finally {
      await echo.stop();
    }
  });
});
