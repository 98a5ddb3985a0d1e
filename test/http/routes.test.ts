/**
 * Every route of dist/plugins/http.wasm through curl, a real client: status,
 * headers (Date, Content-Type, Content-Length, Allow, Connection) and body.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyClients, problems, sleep } from '../helpers/server.js';
import { curl, curl1, startHttp, type HttpResponse, type HttpServer } from '../helpers/http.js';

let http: HttpServer;
let dir: string;

beforeAll(async () => {
  http = await startHttp();
  dir = mkdtempSync(join(tmpdir(), 'wasmux-http-'));
});

afterEach(() => {
  destroyClients();
});

afterAll(async () => {
  await http?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/;

/** The headers every response carries. */
function expectCommonHeaders(r: HttpResponse): void {
  expect(r.version).toBe('HTTP/1.1');
  expect(r.headers['server']).toBe('wasmux');
  expect(r.headers['date']).toMatch(IMF_FIXDATE);
  // The wall clock, to the second (Date.parse reads IMF-fixdate); 2 s of slack for a busy machine.
  expect(Math.abs(Date.parse(r.headers['date']!) - Date.now())).toBeLessThan(2_000);
  // Node formats IMF-fixdate the same way: the guest's calendar arithmetic must agree.
  expect(new Date(Date.parse(r.headers['date']!)).toUTCString()).toBe(r.headers['date']);
  // Each header once.
  const names = r.lines.map(([n]) => n.toLowerCase());
  expect(new Set(names).size).toBe(names.length);
}

function file(name: string, data: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

describe('http routes (curl)', () => {
  it('GET / answers the fixed greeting, keep-alive by default', async () => {
    const r = await curl1([`${http.base}/`]);
    expect(r.status).toBe(200);
    expect(r.reason).toBe('OK');
    expectCommonHeaders(r);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers['content-length']).toBe('15');
    expect(r.body.toString()).toBe('Hello, wasmux!\n');
    expect(r.headers['connection']).toBeUndefined(); // HTTP/1.1: persistent unless said otherwise
  });

  it('GET /?query ignores the query', async () => {
    const r = await curl1([`${http.base}/?a=1&b=2`]);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('Hello, wasmux!\n');
  });

  it('HEAD / sends the headers GET would, and no body', async () => {
    const r = await curl1(['-I', `${http.base}/`], { head: true });
    expect(r.status).toBe(200);
    expectCommonHeaders(r);
    expect(r.headers['content-length']).toBe('15');
    expect(r.body.length).toBe(0);
  });

  it('POST /echo returns a small body', async () => {
    const r = await curl1(['--data-binary', 'hello, echo', `${http.base}/echo`]);
    expect(r.status).toBe(200);
    expectCommonHeaders(r);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    expect(r.headers['content-length']).toBe('11');
    expect(r.body.toString()).toBe('hello, echo');
  });

  it('POST /echo with an empty body returns an empty body', async () => {
    const r = await curl1(['-X', 'POST', `${http.base}/echo`]);
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe('0');
    expect(r.body.length).toBe(0);
  });

  it('POST /echo with Expect: 100-continue gets the go-ahead at once and its 200 KiB back', async () => {
    const data = randomBytes(200 * 1024);
    const t = performance.now();
    const r = await curl1(['-v', '-H', 'Expect: 100-continue', '--data-binary', `@${file('200k.bin', data)}`, `${http.base}/echo`]);
    const ms = performance.now() - t;
    expect(r.stderr).toContain('< HTTP/1.1 100 Continue');
    // Without the 100, curl would wait a whole second before sending the body.
    expect(ms).toBeLessThan(900);
    expect(r.status).toBe(200);
    expect(r.body.equals(data)).toBe(true);
  });

  it('POST /echo with a chunked body (1 MiB, the limit) returns it decoded', async () => {
    const data = randomBytes(1024 * 1024);
    const r = await curl1(['-v', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file('1m.bin', data)}`, `${http.base}/echo`]);
    expect(r.stderr).toContain('> Transfer-Encoding: chunked');
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(data.length));
    expect(r.body.equals(data)).toBe(true);
  });

  it('POST /echo with a Content-Length body of exactly 1 MiB (the limit) returns it', async () => {
    const data = randomBytes(1024 * 1024);
    const r = await curl1(['--data-binary', `@${file('1m-cl.bin', data)}`, `${http.base}/echo`]);
    expect(r.status).toBe(200);
    expect(r.body.equals(data)).toBe(true);
  });

  it('GET /stats returns the counters as JSON', async () => {
    const r = await curl1([`${http.base}/stats`]);
    expect(r.status).toBe(200);
    expectCommonHeaders(r);
    expect(r.headers['content-type']).toBe('application/json');
    const s = JSON.parse(r.body.toString());
    expect(Object.keys(s)).toEqual([
      'instance',
      'requests',
      'rejected',
      'connections',
      'open',
      'bytesIn',
      'bytesOut',
      'memory',
      'heapFree',
    ]);
    // The instance's linear memory (whole 64 KiB pages, within the default cap) and what its allocator has free of it.
    expect(s.memory % 65536).toBe(0);
    expect(s.memory).toBeLessThanOrEqual(64 << 20);
    expect(s.heapFree).toBeGreaterThan(0);
    expect(s.heapFree).toBeLessThan(s.memory);
    expect(s.instance).toBe(0);
    expect(s.requests).toBeGreaterThan(0);
    expect(s.connections).toBeGreaterThanOrEqual(s.open);
    expect(s.open).toBeGreaterThanOrEqual(1); // this connection
    expect(s.bytesIn).toBeGreaterThan(0);
    expect(s.bytesOut).toBeGreaterThan(0);
    const h = await curl1(['-I', `${http.base}/stats`], { head: true });
    expect(h.status).toBe(200);
    expect(h.body.length).toBe(0);
  });

  it('an unknown path is 404 (with a body; HEAD without), and the connection stays open', async () => {
    const rs = await curl(['-v', `${http.base}/nope`, `${http.base}/also/nope`]);
    expect(rs.map((r) => r.status)).toEqual([404, 404]);
    expectCommonHeaders(rs[0]!);
    expect(rs[0]!.body.toString()).toBe('Not Found: no such path\n');
    expect(rs[0]!.headers['connection']).toBeUndefined();
    expect(rs.stderr).toContain('Re-using existing connection');
    const h = await curl1(['-I', `${http.base}/nope`], { head: true });
    expect(h.status).toBe(404);
    expect(h.body.length).toBe(0);
  });

  it.each([
    ['DELETE', '/', 'GET, HEAD'],
    ['POST', '/', 'GET, HEAD'],
    ['PUT', '/stats', 'GET, HEAD'],
    ['GET', '/echo', 'POST'],
    ['OPTIONS', '/echo', 'POST'],
  ])('%s %s is 405 with Allow: %s, and the connection stays open', async (method, path, allow) => {
    const rs = await curl(['-v', '-X', method, `${http.base}${path}`, `${http.base}${path}`]);
    expect(rs.map((r) => r.status)).toEqual([405, 405]);
    expect(rs[0]!.reason).toBe('Method Not Allowed');
    expect(rs[0]!.headers['allow']).toBe(allow);
    expect(rs.stderr).toContain('Re-using existing connection');
  });

  it.each([
    ['ANNOUNCE', '/'],
    ['BREW', '/nope'],
  ])('%s %s, a method the server does not know, is 501 on any path, and the connection stays open', async (method, path) => {
    const rs = await curl(['-v', '-X', method, `${http.base}${path}`, `${http.base}${path}`]);
    expect(rs.map((r) => r.status)).toEqual([501, 501]);
    expect(rs[0]!.reason).toBe('Not Implemented');
    expect(rs[0]!.body.toString()).toBe('Not Implemented: method not implemented\n');
    expect(rs.stderr).toContain('Re-using existing connection');
  });

  it('OPTIONS * lists the methods the server knows', async () => {
    const r = await curl1(['-X', 'OPTIONS', '--request-target', '*', `${http.base}/`]);
    expect(r.status).toBe(200);
    expect(r.headers['allow']).toBe('GET, HEAD, POST, OPTIONS');
    expect(r.headers['content-length']).toBe('0');
  });

  it('an absolute-form target is served by its path', async () => {
    const r = await curl1(['--request-target', 'http://example.com/echo?x=1', '--data-binary', 'abs', `${http.base}/`]);
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('abs');
    const root = await curl1(['--request-target', 'HTTP://example.com', `${http.base}/`]);
    expect(root.status).toBe(200);
    expect(root.body.toString()).toBe('Hello, wasmux!\n');
  });

  it('CONNECT is 501 (not a proxy)', async () => {
    const r = await curl1(['-X', 'CONNECT', '--request-target', 'example.com:443', `${http.base}/`]);
    expect(r.status).toBe(501);
  });

  it('the Date header follows the wall clock from one second to the next', async () => {
    const a = await curl1([`${http.base}/`]);
    await sleep(1_100);
    const b = await curl1([`${http.base}/`]);
    const delta = Date.parse(b.headers['date']!) - Date.parse(a.headers['date']!);
    expect(delta).toBeGreaterThanOrEqual(1_000);
    expect(delta).toBeLessThanOrEqual(3_000);
  });

  it('logged no warning or error', () => {
    expect(problems(http.logs)).toEqual([]);
  });
});
