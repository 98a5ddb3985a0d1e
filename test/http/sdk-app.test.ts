/**
 * The SDK's HTTP server as a plugin author uses it (assembly/sdk/http,
 * through the http-app test plugin): Request's path, query and header
 * fields, Response's text/json/header helpers, every status an app may
 * send, and the app's mistakes (no response, two responses, a status that
 * cannot answer, a header value that would forge headers) answered without
 * breaking the connection's framing.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { fileURLToPath } from 'node:url';
import { destroyClients, problems, waitFor } from '../helpers/server.js';
import { RawClient, curl1, startHttp, type HttpServer } from '../helpers/http.js';

const APP_WASM = fileURLToPath(new URL('../../dist/test-plugins/http-app.wasm', import.meta.url));

let http: HttpServer;
beforeAll(async () => {
  http = await startHttp({ plugin: APP_WASM });
});
afterEach(() => destroyClients());
afterAll(async () => {
  await http.stop();
});

const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

/** The log lines since `before`, once there are `n` of them (they come from the instance's thread, after the responses). */
async function logsSince(before: number, n: number) {
  await waitFor(() => http.logs.length - before >= n, 5_000);
  return http.logs.slice(before);
}

describe('the SDK HTTP server, as an app uses it', () => {
  it('Request: path, query, header fields in any case, a missing one null', async () => {
    const r = await curl1(['-s', '-i', '-H', 'X-Custom: some value  ', `${http.base}/request?a=1&b=2`]);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body.toString())).toEqual({
      path: '/request',
      query: 'a=1&b=2',
      custom: 'some value',
      host: `127.0.0.1:${http.port}`,
      missing: null,
    });
  });

  it("the header fields are the current request's, not an earlier one's on the same connection", async () => {
    const c = await RawClient.open(http.port);
    c.send(get('/request', 'X-Custom: first\r\n'));
    c.send(get('/request'));
    expect(JSON.parse((await c.response()).body.toString()).custom).toBe('first');
    expect(JSON.parse((await c.response()).body.toString()).custom).toBeNull();
  });

  it('statuses: a known one with its reason, 204/304 without a body, an unlisted one with an empty reason', async () => {
    const c = await RawClient.open(http.port);
    for (const code of [201, 204, 304, 299, 418]) c.send(get(`/status/${code}`));
    const created = await c.response();
    expect([created.status, created.reason, created.body.toString()]).toEqual([201, 'Created', 'status 201\n']);
    const none = await c.response();
    expect([none.status, none.reason]).toEqual([204, 'No Content']);
    expect(none.headers['content-length']).toBeUndefined();
    expect(none.headers['content-type']).toBeUndefined();
    const notModified = await c.response();
    expect(notModified.status).toBe(304);
    expect(notModified.headers['content-length']).toBeUndefined();
    const unlisted = await c.response();
    expect([unlisted.status, unlisted.reason, unlisted.body.toString()]).toEqual([299, '', 'status 299\n']);
    expect((await c.response()).status).toBe(418);
    // Nothing stray on the connection: each response was exactly what its framing said.
    expect(c.received.length).toBe(0);
  });

  it('a status that cannot answer a request (1xx, 600) is sent as 500, and logged', async () => {
    const before = http.logs.length;
    for (const code of [100, 600]) {
      const r = await curl1(['-s', '-i', `${http.base}/status/${code}`]);
      expect(r.status).toBe(500);
      expect(r.body.toString()).toBe(`status ${code}\n`);
    }
    expect((await logsSince(before, 2)).map((e) => e.message)).toEqual([
      'HTTP status 100 cannot answer a request: sent 500 instead',
      'HTTP status 600 cannot answer a request: sent 500 instead',
    ]);
  });

  it('an app that writes no response: 500, logged, and the connection goes on', async () => {
    const before = http.logs.length;
    const c = await RawClient.open(http.port);
    c.send(get('/none') + get('/status/200'));
    const r = await c.response();
    expect(r.status).toBe(500);
    expect(r.body.toString()).toBe('Internal Server Error: the handler wrote no response\n');
    expect((await c.response()).status).toBe(200);
    expect((await logsSince(before, 1)).map((e) => [e.level, e.message])).toEqual([
      ['warn', 'HTTP handler wrote no response to /none: answered 500'],
    ]);
  });

  it('an app that writes two responses: the first is sent, the second dropped and logged; framing holds', async () => {
    const before = http.logs.length;
    const c = await RawClient.open(http.port);
    c.send(get('/twice') + get('/status/202'));
    const r = await c.response();
    expect([r.status, r.body.toString()]).toEqual([200, 'first\n']);
    expect((await c.response()).status).toBe(202);
    expect((await logsSince(before, 1)).map((e) => e.message)).toEqual([
      'HTTP response already written: a second one (status 201) was dropped',
    ]);
  });

  it('res.header adds what is valid and refuses a bad name or a value with CR LF (no injected header)', async () => {
    const r = await curl1(['-s', '-i', `${http.base}/set-header`]);
    expect(r.body.toString()).toBe('true,false,false,false,true');
    expect(r.headers['x-good']).toBe('yes');
    expect(r.headers['x-also']).toBe('fine');
    expect(r.headers['injected']).toBeUndefined();
    expect(r.headers['x-evil']).toBeUndefined();
  });

  it('req.text and res.text round-trip a UTF-8 body; res.close ends the connection', async () => {
    const r = await curl1(['-s', '-i', '--data-binary', 'héllo, wörld', `${http.base}/text`]);
    expect(r.body.toString('utf8')).toBe('got héllo, wörld');
    const c = await RawClient.open(http.port);
    c.send(get('/close') + get('/status/200'));
    const bye = await c.response();
    expect(bye.headers['connection']).toBe('close');
    await c.waitForEnd();
    expect(c.received.length).toBe(0); // the pipelined request after it was not answered
  });

  it('logged nothing else', () => {
    const expected = /^(HTTP status \d+ cannot answer|HTTP handler wrote no response|HTTP response already written)/;
    expect(problems(http.logs).filter((e) => !expected.test(e.message))).toEqual([]);
  });
});
