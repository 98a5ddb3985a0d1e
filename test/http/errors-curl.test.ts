/**
 * Every error status of the http plugin that curl can be made to provoke,
 * with curl as the client: the status, the one-line reason in the body,
 * `Connection: close` where the stream can no longer be trusted, and curl
 * reading the whole response (exit 0: no reset ate it). 404 and 405 are in
 * routes.test.ts; the raw-socket corpus (malformed.test.ts) covers the
 * rest, 505 included.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyClients, problems } from '../helpers/server.js';
import { curl1, settledStats, startHttp, type HttpServer } from '../helpers/http.js';

const IDLE_MS = 300;
let http: HttpServer;
let dir: string;
let big: string; // a 2 MiB file: over the 1 MiB body limit

beforeAll(async () => {
  http = await startHttp({ config: `idle-ms=${IDLE_MS}` });
  dir = mkdtempSync(join(tmpdir(), 'wasmux-http-'));
  big = join(dir, '2m.bin');
  writeFileSync(big, randomBytes(2 * 1024 * 1024));
});

afterEach(() => {
  destroyClients();
});

afterAll(async () => {
  await http?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** curl -v ...args; the response must close the connection and say so. */
async function closing(args: string[], status: number, reason: RegExp) {
  const r = await curl1(['-v', ...args]);
  expect(r.status).toBe(status);
  expect(r.headers['connection']).toBe('close');
  expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
  expect(r.body.toString()).toMatch(reason);
  expect(r.stderr).toMatch(/Closing connection/);
  return r;
}

describe('http errors (curl)', () => {
  it('400: an HTTP/1.1 request without Host (curl -H "Host:")', async () => {
    await closing(['-H', 'Host:', `${http.base}/`], 400, /^Bad Request: missing Host header\n$/);
  });

  it('400: whitespace between a header name and its colon', async () => {
    await closing(['-H', 'X-Bad : v', `${http.base}/`], 400, /whitespace before colon/);
  });

  it('400: two Content-Length headers', async () => {
    await closing(
      ['-H', 'Content-Length: 1', '-H', 'Content-Length: 1', '--data-binary', 'x', `${http.base}/echo`],
      400,
      /more than one Content-Length/,
    );
  });

  it(`408: a body that stops arriving (Content-Length 100, 3 bytes sent), after idle-ms=${IDLE_MS}`, async () => {
    const t = performance.now();
    await closing(['-H', 'Content-Length: 100', '--data-binary', 'abc', `${http.base}/echo`], 408, /^Request Timeout: /);
    const ms = performance.now() - t;
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 20); // timers have 10 ms ticks; the clock of this process is not the guest's
    expect(ms).toBeLessThan(IDLE_MS + 1_000);
  });

  it('413: a 2 MiB upload with Expect: 100-continue is refused before its body is sent', async () => {
    const r = await closing(['--data-binary', `@${big}`, `${http.base}/echo`], 413, /^Content Too Large: body larger than max-body\n$/);
    expect(r.stderr).toContain('> Expect: 100-continue');
    expect(r.stderr).not.toContain('100 Continue\r');
  });

  it('413: a 2 MiB upload without Expect (the body arrives anyway and is read and dropped)', async () => {
    const r = await closing(['-H', 'Expect:', '--data-binary', `@${big}`, `${http.base}/echo`], 413, /Content Too Large/);
    expect(r.stderr).not.toContain('> Expect');
  });

  it('413: a chunked 2 MiB upload, refused once the decoded body passes 1 MiB', async () => {
    const r = await closing(
      ['-H', 'Transfer-Encoding: chunked', '--data-binary', `@${big}`, `${http.base}/echo`],
      413,
      /Content Too Large/,
    );
    expect(r.stderr).toContain('< HTTP/1.1 100 Continue'); // the size was not known up front
  });

  it('414: a 3,000-byte path (limit 2 KiB)', async () => {
    await closing([`${http.base}/${'a'.repeat(3000)}`], 414, /^URI Too Long: /);
  });

  it('414 is not given to a 2,000-byte path (under the limit): 404', async () => {
    const r = await curl1([`${http.base}/${'a'.repeat(2000)}`]);
    expect(r.status).toBe(404);
  });

  it('431: a 9,000-byte header (limit 8 KiB)', async () => {
    await closing(['-H', `X-Big: ${'b'.repeat(9000)}`, `${http.base}/`], 431, /^Request Header Fields Too Large: /);
  });

  it('417: an expectation other than 100-continue', async () => {
    await closing(['-H', 'Expect: something-else', '--data-binary', 'x', `${http.base}/echo`], 417, /^Expectation Failed: /);
  });

  it('501: a transfer coding other than chunked (gzip, chunked)', async () => {
    await closing(['-H', 'Transfer-Encoding: gzip, chunked', '--data-binary', 'x', `${http.base}/echo`], 501, /^Not Implemented: /);
  });

  // 505 is not provokable with curl: it only sends HTTP/1.0 and 1.1 request
  // lines on cleartext HTTP/1 (--http2-prior-knowledge speaks binary HTTP/2
  // instead). test/http/malformed.test.ts sends HTTP/2.0, HTTP/3.0, HTTP/0.9
  // request lines and the HTTP/2 preface over a raw socket and expects 505.

  it('counted every rejected request, and closed every connection', async () => {
    // curl has closed its side; the server closes each connection once it reads that end.
    const s = await settledStats(http.port);
    expect(s.rejected).toBe(11);
    expect(s.open).toBe(1); // the /stats connection itself
    expect(problems(http.logs)).toEqual([]);
  });
});
