/**
 * 19,000 idle WebSockets in one ws instance at the default memory cap
 * (64 MiB), then one broadcast that reaches every one of them.
 *
 * The clients live in another process (bench/c/idlegen.c, compiled here):
 * this process holds the instance's 19,000 sockets, and a process may open
 * 20,000 descriptors on this machine. idlegen upgrades every connection,
 * holds them idle, then checks that each receives exactly the broadcast
 * frame. Everything is bounded in time.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { ROOT } from '../helpers/cli.js';
import { openClient, startWs, type WsServer } from '../helpers/ws.js';

const CONNS = 19_000;
const noCc = spawnSync('cc', ['--version'], { stdio: 'ignore' }).error
  ? 'cc is not installed (Debian: apt-get install -y gcc libc6-dev)'
  : null;

let dir: string | null = null;
let ws: WsServer | null = null;
let gen: ChildProcess | null = null;
afterAll(async () => {
  gen?.kill('SIGKILL');
  await ws?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// What idlegen sends and how its escapes spell the server's frame.
const UPGRADE =
  'GET /chat HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n';
const MESSAGE = 'to every one of 19000';

describe.skipIf(noCc !== null)(`ws with ${CONNS} idle clients${noCc ? ` — skipped: ${noCc}` : ''}`, () => {
  it(`holds ${CONNS} idle WebSockets at the default 64 MiB, and a broadcast reaches every one`, async () => {
    dir = await mkdtemp(join(tmpdir(), 'wasmux-idle-'));
    const bin = join(dir, 'idlegen');
    const cc = spawnSync('cc', ['-O2', '-Wall', '-o', bin, join(ROOT, 'bench/c/idlegen.c')], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);

    ws = await startWs({ policy: { maxConnections: CONNS + 100, idleTimeoutMs: 0 } });
    const g = spawn(
      bin,
      ['--port', String(ws.port), '--conns', String(CONNS), '--send', UPGRADE, '--expect', '\\r\\n\\r\\n', '--timeout-ms', '60000'],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    gen = g;
    let stderr = '';
    g.stderr!.on('data', (d) => (stderr += d));
    const lines = readline.createInterface({ input: g.stdout! });
    const waiting: ((line: string) => void)[] = [];
    lines.on('line', (l) => waiting.shift()?.(l));
    const next = (ms: number) =>
      new Promise<Record<string, number>>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`idlegen said nothing within ${ms} ms; stderr: ${stderr}`)), ms);
        waiting.push((l) => {
          clearTimeout(t);
          resolve(JSON.parse(l));
        });
      });

    const ready = await next(90_000);
    expect(ready.ready).toBe(CONNS);
    const st = ws.server.stats()[0]!;
    expect(st.open).toBe(CONNS);
    expect(st.ends).toEqual({});
    expect(st.memoryBytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    console.log(
      `${CONNS} idle WebSockets open in ${(ready.ms! / 1000).toFixed(1)} s; the instance's linear memory: ${(st.memoryBytes / 1048576).toFixed(1)} MiB`,
    );

    // One more client says something: every idle one gets exactly its frame (FIN + text, then the length).
    const speaker = await openClient(ws.url);
    g.stdin!.write(`expect \\x81\\x${MESSAGE.length.toString(16).padStart(2, '0')}${MESSAGE} 60000\n`);
    speaker.send(MESSAGE);
    const got = await next(90_000);
    // On a mismatch, what idlegen saw (its stderr: the first wrong answers) and what the instance counted.
    expect(got, `idlegen: ${stderr}; the instance: ${JSON.stringify(ws.server.stats()[0])}`).toEqual({
      matched: CONNS,
      wrong: 0,
      missing: 0,
    });
    speaker.terminate();

    g.stdin!.end('close\n');
    expect(await next(30_000)).toEqual({ closed: CONNS });
    expect(ws.server.stats()[0]!.restarts).toBe(0);
  }, 300_000);
});
