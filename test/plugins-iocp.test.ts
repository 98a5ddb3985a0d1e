/**
 * The three protocol plugins on the IOCP backend, under wine (Windows'
 * node.exe, see test/helpers/wine.ts), each driven by its real client from
 * Linux: curl for http, redis-cli for resp, the ws package for ws. The same
 * dist/plugins/*.wasm files the epoll and poll suites run. Skipped, with the
 * reason, when wine is not set up.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';
import { startWineServer, wineNode, type WineServer } from './helpers/wine.js';

const run = promisify(execFile);
const wine = wineNode();
const skip = 'skip' in wine ? wine.skip : null;

let server: WineServer | null = null;
afterEach(async () => {
  if (server) {
    const end = await server.stop();
    server = null;
    expect(end.code).toBe(0);
  }
});

const start = async (plugin: string) =>
  (server = await startWineServer(
    [`dist/plugins/${plugin}.wasm`, '--backend', 'iocp', '--listen', '127.0.0.1:0', '--drain-timeout', '300'],
    90_000,
  ));

describe.skipIf(skip !== null)(`protocol plugins on iocp under wine${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('http: curl gets the fixed body, the echo of a POST, and a 404, on one keep-alive connection', async () => {
    const s = await start('http');
    const base = `http://127.0.0.1:${s.port}`;
    const r = await run('curl', [
      '-s',
      '-i',
      '--max-time',
      '20',
      `${base}/`,
      '--next',
      '-s',
      '-i',
      '--data-binary',
      'hello iocp',
      `${base}/echo`,
      '--next',
      '-s',
      '-i',
      `${base}/nope`,
    ]);
    // The echoed body has no newline: the next status line follows it directly.
    const statuses = [...r.stdout.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]);
    expect(statuses).toEqual(['200', '200', '404']);
    expect(r.stdout).toContain('Hello, wasmux!');
    expect(r.stdout).toMatch(/\r\n\r\nhello iocp/);
    expect(s.output().stdout).toContain('(backend iocp, 1 worker, sha256 ');
  }, 120_000);

  it('resp: redis-cli SET, GET, INCR and an error reply', async () => {
    const s = await start('resp');
    const cli = async (...args: string[]) => (await run('redis-cli', ['-p', String(s.port), ...args], { timeout: 20_000 })).stdout.trim();
    expect(await cli('SET', 'k', 'wine')).toBe('OK');
    expect(await cli('GET', 'k')).toBe('wine');
    expect(await cli('INCR', 'n')).toBe('1');
    expect(await cli('INCR', 'k')).toBe('ERR value is not an integer or out of range');
  }, 120_000);

  it('ws: a message from one client reaches the other, text and binary', async () => {
    const s = await start('ws');
    const url = `ws://127.0.0.1:${s.port}/`;
    const open = (w: WebSocket) =>
      new Promise<void>((res, rej) => {
        w.once('open', () => res());
        w.once('error', rej);
      });
    const a = new WebSocket(url);
    const b = new WebSocket(url);
    try {
      await Promise.all([open(a), open(b)]);
      const got: { data: string; binary: boolean }[] = [];
      const two = new Promise<void>((res) =>
        b.on('message', (d, binary) => {
          got.push({ data: Buffer.from(d as Buffer).toString('hex'), binary });
          if (got.length === 2) res();
        }),
      );
      a.send('hello from wine');
      a.send(Buffer.from([0, 1, 2, 255]));
      await Promise.race([two, new Promise((_, rej) => setTimeout(() => rej(new Error('no broadcast within 20 s')), 20_000))]);
      expect(got).toEqual([
        { data: Buffer.from('hello from wine').toString('hex'), binary: false },
        { data: '000102ff', binary: true },
      ]);
    } finally {
      a.terminate();
      b.terminate();
    }
  }, 120_000);
});
