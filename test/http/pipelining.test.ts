/**
 * Pipelining in the http plugin: several requests sent in one write before
 * any response is read are all answered, in order, on the one connection;
 * a request that closes the connection (Connection: close, or a malformed
 * one) is the last one answered; a client that pipelines a lot without
 * reading gets everything once it reads (the server stops reading while its
 * output waits, and resumes).
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { destroyClients, problems, sleep, totals, withTimeout } from '../helpers/server.js';
import { RawClient, get, parseResponses, pluginStats, startHttp, type HttpServer } from '../helpers/http.js';

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

/** Waits until nothing new has arrived for 300 ms (and something has), within `timeoutMs`. */
async function quiet(c: RawClient, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let still = 0;
  while (still < 3) {
    if (Date.now() > deadline) throw new Error(`responses still arriving after ${timeoutMs} ms (${c.received.length} bytes)`);
    await sleep(100);
    if (c.received.length === last && last > 0) still++;
    else still = 0;
    last = c.received.length;
  }
}

const echo = (body: string) => `POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('http pipelining', () => {
  it('answers seven different requests sent in one write, in order', async () => {
    const before = await pluginStats(http.port);
    const c = await RawClient.open(http.port);
    c.send(
      [
        get('/'),
        echo('first body'),
        'HEAD / HTTP/1.1\r\nHost: t\r\n\r\n',
        'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nchunky\r\n0\r\nX-T: 1\r\n\r\n',
        get('/missing'),
        'DELETE / HTTP/1.1\r\nHost: t\r\n\r\n',
        get('/stats'),
      ].join(''),
    );
    const heads = [false, false, true, false, false, false, false];
    const got = [];
    for (const head of heads) got.push(await c.response({ head }));
    expect(got.map((r) => r.status)).toEqual([200, 200, 200, 200, 404, 405, 200]);
    expect(got[0]!.body.toString()).toBe('Hello, wasmux!\n');
    expect(got[1]!.body.toString()).toBe('first body');
    expect(got[2]!.body.length).toBe(0);
    expect(got[3]!.body.toString()).toBe('chunky');
    expect(got[5]!.headers['allow']).toBe('GET, HEAD');
    const s = JSON.parse(got[6]!.body.toString());
    expect(s.connections - before.connections).toBe(1); // `before` counted its own connection
    expect(c.received.length).toBe(0);
    expect(c.ended).toBe(false);
  });

  it('answers 1,000 pipelined requests in one write, in order', async () => {
    const c = await RawClient.open(http.port);
    const N = 1000;
    c.send(Array.from({ length: N }, (_, i) => echo(`request #${i}`)).join(''));
    await quiet(c, 10_000);
    const { responses, rest } = parseResponses(c.received);
    expect(responses.length).toBe(N);
    expect(rest.length).toBe(0);
    responses.forEach((r, i) => {
      if (r.status !== 200 || r.body.toString() !== `request #${i}`) throw new Error(`response ${i}: ${r.status} ${r.body}`);
    });
  });

  it('stops after a pipelined Connection: close: the requests after it get no answer', async () => {
    const c = await RawClient.open(http.port);
    c.send(`${echo('one')}GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n${echo('never')}`);
    const a = await c.response();
    const b = await c.response();
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.toString()).toBe('one');
    expect(b.headers['connection']).toBe('close');
    await c.waitForEnd();
    expect(c.received.length).toBe(0);
  });

  it('stops after a pipelined malformed request: 400, then the end', async () => {
    const c = await RawClient.open(http.port);
    c.send(`${echo('ok')}GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n${get('/')}`);
    const a = await c.response();
    const b = await c.response();
    expect([a.status, b.status]).toEqual([200, 400]);
    await c.waitForEnd();
    expect(c.received.length).toBe(0);
  });

  it('a client that pipelines 50,000 requests before reading anything gets every response once it reads', async () => {
    // About 3 MB of requests for about 8 MB of responses: far more than the
    // socket buffers hold, so the server's writes block, its output queue
    // passes its high-water mark, and it must stop reading until the client reads.
    const N = 50_000;
    const c = await RawClient.open(http.port);
    c.sock.pause();
    const payload = Array.from({ length: N }, (_, i) => echo(String(i))).join('');
    const written = new Promise<void>((resolve, reject) => c.sock.write(payload, 'latin1', (e) => (e ? reject(e) : resolve())));
    const inBefore = totals(http.server).bytesIn;
    await sleep(500);
    // The server read only part of it: it stopped while its responses could not be sent.
    const taken = totals(http.server).bytesIn - inBefore;
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(Buffer.byteLength(payload) * 0.5);
    c.sock.resume();
    await withTimeout(written, 20_000, 'writing 50,000 requests');
    await quiet(c, 20_000);
    const { responses, rest } = parseResponses(c.received);
    expect(responses.length).toBe(N);
    expect(rest.length).toBe(0);
    for (let i = 0; i < N; i++) {
      if (responses[i]!.body.toString() !== String(i)) throw new Error(`response ${i} out of order: ${responses[i]!.body}`);
    }
  }, 45_000);
});
