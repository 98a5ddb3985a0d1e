/**
 * The http plugin's timers, with `--config idle-ms=300,linger-ms=500`:
 * a request that has begun must arrive in time (its whole head within
 * idle-ms of its first byte, then each read of its body within idle-ms of
 * the previous one) or it is answered 408 and the connection closed; a
 * connection with no request under way is not timed; after a closing
 * response the server lingers (reading and dropping) at most linger-ms.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { destroyClients, problems, sleep } from '../helpers/server.js';
import { RawClient, get, pluginStats, settledStats, startHttp, type HttpServer } from '../helpers/http.js';

const IDLE_MS = 300;
const LINGER_MS = 500;
// Timers tick every 10 ms and the loop may be a little late; the guest's clock is not this
// process's, and on a busy machine either may be descheduled for a while.
const EARLY_SLACK = 20;
const LATE_SLACK = 1_000;

let http: HttpServer;

beforeAll(async () => {
  http = await startHttp({ config: `idle-ms=${IDLE_MS},linger-ms=${LINGER_MS}` });
});

afterEach(() => {
  destroyClients();
});

afterAll(async () => {
  expect(problems(http?.logs ?? [])).toEqual([]);
  await http?.stop();
});

/** Sends `partial`, expects a 408 after about `after` ms and the connection's end. */
async function expect408(c: RawClient, t0: number, after: number): Promise<void> {
  const r = await c.response({ timeoutMs: after + 2_000 });
  const ms = performance.now() - t0;
  expect(r.status).toBe(408);
  expect(r.headers['connection']).toBe('close');
  expect(ms).toBeGreaterThanOrEqual(after - EARLY_SLACK);
  expect(ms).toBeLessThan(after + LATE_SLACK);
  await c.waitForEnd(2_000);
  expect(c.received.length).toBe(0);
}

describe('http timeouts', () => {
  it.each([
    ['part of a request line', 'GE'],
    ['a request line', 'GET / HTTP/1.1\r\n'],
    ['a head without its final empty line', 'GET / HTTP/1.1\r\nHost: t\r\n'],
    ['a lone CR before a request line', '\r'],
    ['part of a Content-Length body', 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello'],
    ['a chunked body without its last chunk', 'POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n'],
  ])(`%s, then nothing: 408 after idle-ms (${IDLE_MS})`, async (_name, partial) => {
    const c = await RawClient.open(http.port);
    const t0 = performance.now();
    c.send(partial);
    await expect408(c, t0, IDLE_MS);
  });

  it('a head trickling in byte by byte gets no more than idle-ms in all (progress does not extend it)', async () => {
    const c = await RawClient.open(http.port);
    const t0 = performance.now();
    const head = `GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ${'s'.repeat(100)}\r\n\r\n`;
    let i = 0;
    const trickle = setInterval(() => {
      if (i < head.length && !c.ended) c.send(head[i++]!);
    }, 25);
    try {
      await expect408(c, t0, IDLE_MS);
    } finally {
      clearInterval(trickle);
    }
  });

  it('a body arriving slowly but steadily (a byte every 100 ms, for 1.2 s) is not timed out', async () => {
    const c = await RawClient.open(http.port);
    c.send('POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 12\r\n\r\n');
    for (const b of 'slow, steady') {
      await sleep(100);
      c.send(b);
    }
    const r = await c.response();
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe('slow, steady');
  });

  it('an idle keep-alive connection (no request under way) is not timed out', async () => {
    const c = await RawClient.open(http.port);
    c.send(get());
    expect((await c.response()).status).toBe(200);
    await sleep(IDLE_MS * 3);
    expect(c.ended).toBe(false);
    c.send(get());
    expect((await c.response()).status).toBe(200);
  });

  it('an open connection that never sends anything is not timed out', async () => {
    const c = await RawClient.open(http.port);
    await sleep(IDLE_MS * 3);
    expect(c.ended).toBe(false);
    c.send(get());
    expect((await c.response()).status).toBe(200);
  });

  it('each request gets its own deadline: a partial request after a complete one is timed from its own start', async () => {
    const c = await RawClient.open(http.port);
    c.send('GET / HTTP/1.1\r\n');
    await sleep(100);
    // The first request completes 100 ms in (200 ms before its deadline: room for a
    // busy machine); the second begins at once and then stalls. Timed from the first
    // request's start, its 408 would come 200 ms after t1, under expect408's bound.
    const t1 = performance.now();
    c.send('Host: t\r\n\r\nGET / HTTP/1.1\r\n');
    expect((await c.response()).status).toBe(200);
    await expect408(c, t1, IDLE_MS);
  });

  it(`after a closing response the server reads and drops input, then closes for good after linger-ms (${LINGER_MS})`, async () => {
    destroyClients();
    expect((await settledStats(http.port)).open).toBe(1); // only the /stats connection
    const c = await RawClient.open(http.port);
    const t0 = performance.now();
    c.send('GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    expect((await c.response()).status).toBe(200);
    await c.waitForEnd(); // the server's FIN: its sending side is shut
    c.send('ignored, not an error\r\n'); // still read (and dropped): no reset
    // Still open on the server's side (the client has not closed) ...
    expect((await pluginStats(http.port)).open).toBeGreaterThanOrEqual(2);
    await sleep(100);
    expect(c.error).toBeNull();
    // ... until linger-ms pass.
    const s = await settledStats(http.port, LINGER_MS + 2_000);
    expect(s.open).toBe(1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(LINGER_MS - EARLY_SLACK);
  });

  it('the 408s were counted as rejected requests', async () => {
    const s = await pluginStats(http.port);
    expect(s.rejected).toBe(8);
  });
});
