/**
 * Incremental parsing in the http plugin: a request cut at any byte
 * boundary — in the request line, a header, the CRLF pairs, a chunk size,
 * chunk data, the trailers — is parsed the same as when it arrives whole.
 * Each cut is two writes a few milliseconds apart on one keep-alive
 * connection (TCP_NODELAY on both sides, so the server sees two reads in
 * practice); then the whole request one byte per write.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { destroyClients, problems, sleep } from '../helpers/server.js';
import { RawClient, startHttp, type HttpServer } from '../helpers/http.js';

let http: HttpServer;

beforeAll(async () => {
  http = await startHttp();
});

afterEach(() => {
  destroyClients();
});

afterAll(async () => {
  expect(problems(http?.logs ?? [])).toEqual([]);
  await http?.stop();
});

const REQUESTS: [name: string, request: string, body: string][] = [
  [
    'a Content-Length request',
    'POST /echo?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: split-test\r\nContent-Length: 12\r\n\r\nhello, split',
    'hello, split',
  ],
  [
    'a chunked request with extensions and trailers',
    'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n' +
      '5;ext=1\r\nhello\r\n1B\r\n, chunked world of splits\r\n\r\n0\r\nX-Trailer: done\r\n\r\n',
    'hello, chunked world of splits\r\n',
  ],
];

describe('http: requests split across reads', () => {
  it.each(REQUESTS)(
    '%s, cut at every byte boundary',
    async (_name, request, body) => {
      const c = await RawClient.open(http.port);
      const bytes = Buffer.from(request, 'latin1');
      for (let cut = 1; cut < bytes.length; cut++) {
        c.send(bytes.subarray(0, cut));
        await sleep(2);
        c.send(bytes.subarray(cut));
        const r = await c.response({ timeoutMs: 3_000 });
        if (r.status !== 200 || r.body.toString('latin1') !== body) {
          throw new Error(
            `cut at ${cut} (${JSON.stringify(request.slice(0, cut))} | ...): ${r.status} ${JSON.stringify(r.body.toString('latin1'))}`,
          );
        }
      }
      expect(c.ended).toBe(false);
    },
    30_000,
  );

  it.each(REQUESTS)(
    '%s, one byte per write',
    async (_name, request, body) => {
      const c = await RawClient.open(http.port);
      for (const b of Buffer.from(request, 'latin1')) {
        c.send(Buffer.from([b]));
        await sleep(1);
      }
      const r = await c.response({ timeoutMs: 3_000 });
      expect(r.status).toBe(200);
      expect(r.body.toString('latin1')).toBe(body);
    },
    30_000,
  );

  it('a pipelined pair cut at every byte boundary gets both responses, in order', async () => {
    const c = await RawClient.open(http.port);
    const pair = Buffer.from(REQUESTS[1]![1] + REQUESTS[0]![1], 'latin1');
    for (let cut = 1; cut < pair.length; cut += 7) {
      c.send(pair.subarray(0, cut));
      await sleep(1);
      c.send(pair.subarray(cut));
      const a = await c.response({ timeoutMs: 3_000 });
      const b = await c.response({ timeoutMs: 3_000 });
      expect([a.body.toString('latin1'), b.body.toString('latin1')]).toEqual([REQUESTS[1]![2], REQUESTS[0]![2]]);
    }
  }, 30_000);
});
