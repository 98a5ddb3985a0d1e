/**
 * Persistent connections in the http plugin: HTTP/1.1 keeps the connection
 * by default, HTTP/1.0 only with `Connection: keep-alive`, `Connection:
 * close` (either version) ends it after the response. Checked with curl
 * reusing its connection (the plugin's own connection counter must move by
 * one) and on raw sockets.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { destroyClients, problems } from '../helpers/server.js';
import { RawClient, curl, get, pluginStats, settledStats, startHttp, type HttpServer } from '../helpers/http.js';

let http: HttpServer;

// A fresh server per test: the counters /stats shows start from zero.
beforeEach(async () => {
  http = await startHttp();
});

afterEach(async () => {
  destroyClients();
  expect(problems(http.logs)).toEqual([]);
  await http.stop();
});

describe('http keep-alive', () => {
  it('curl with two URLs uses one connection (HTTP/1.1 default)', async () => {
    const rs = await curl(['-v', `${http.base}/`, `${http.base}/stats`]);
    expect(rs.map((r) => r.status)).toEqual([200, 200]);
    expect(rs.stderr).toContain('Re-using existing connection');
    const s = JSON.parse(rs[1]!.body.toString());
    expect(s).toMatchObject({ requests: 2, connections: 1, open: 1 });
  });

  it('curl --http1.0 with two URLs uses two connections, each closed after its response', async () => {
    const rs = await curl(['-v', '--http1.0', `${http.base}/`, `${http.base}/stats`]);
    expect(rs.map((r) => r.status)).toEqual([200, 200]);
    expect(rs.map((r) => r.headers['connection'])).toEqual(['close', 'close']);
    expect(rs.stderr).not.toContain('Re-using existing connection');
    const s = JSON.parse(rs[1]!.body.toString());
    expect(s).toMatchObject({ requests: 2, connections: 2 });
  });

  it('curl --http1.0 with Connection: keep-alive uses one connection, and is told so', async () => {
    const rs = await curl(['-v', '--http1.0', '-H', 'Connection: keep-alive', `${http.base}/`, `${http.base}/stats`]);
    expect(rs.map((r) => r.headers['connection'])).toEqual(['keep-alive', 'keep-alive']);
    expect(rs.stderr).toContain('Re-using existing connection');
    expect(JSON.parse(rs[1]!.body.toString())).toMatchObject({ requests: 2, connections: 1 });
  });

  it('serves 200 sequential requests on one raw connection', async () => {
    const c = await RawClient.open(http.port);
    for (let i = 0; i < 200; i++) {
      c.send(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${String(i).length}\r\n\r\n${i}`);
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.body.toString()).toBe(String(i));
    }
    c.close();
    const s = await pluginStats(http.port);
    expect(s.connections).toBe(2); // the raw one and the /stats one
    expect(s.requests).toBe(201);
  });

  it('HEAD keeps the framing: the GET after it is read correctly', async () => {
    const c = await RawClient.open(http.port);
    c.send('HEAD / HTTP/1.1\r\nHost: t\r\n\r\n');
    const h = await c.response({ head: true });
    expect(h.status).toBe(200);
    expect(h.headers['content-length']).toBe('15');
    c.send(get('/'));
    const r = await c.response();
    expect(r.body.toString()).toBe('Hello, wasmux!\n');
    expect(c.received.length).toBe(0);
  });

  it.each([
    ['HTTP/1.1 with Connection: close', 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'],
    ['HTTP/1.1 with Connection: Keep-Alive, CLOSE', 'GET / HTTP/1.1\r\nHost: t\r\nConnection: Keep-Alive, CLOSE\r\n\r\n'],
    ['HTTP/1.0 without Connection', 'GET / HTTP/1.0\r\n\r\n'],
    ['HTTP/1.0 with Connection: close', 'GET / HTTP/1.0\r\nConnection: close\r\n\r\n'],
  ])('%s: the response says close, then the server ends the connection', async (_name, request) => {
    const c = await RawClient.open(http.port);
    c.send(request);
    const r = await c.response();
    expect(r.status).toBe(200);
    expect(r.headers['connection']).toBe('close');
    await c.waitForEnd();
    expect(c.received.length).toBe(0);
    expect(c.error).toBeNull();
  });

  it('a client that shuts down its side after a request still gets the response, then the end', async () => {
    const c = await RawClient.open(http.port);
    c.sock.end(Buffer.from(get('/')));
    const r = await c.response();
    expect(r.status).toBe(200);
    expect(r.headers['connection']).toBeUndefined(); // the server did not decide to close: the client did
    await c.waitForEnd();
    expect(c.received.length).toBe(0);
  });

  it('every connection is closed once its client is gone', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await RawClient.open(http.port);
      c.send(get('/'));
      await c.response();
      c.close();
    }
    const s = await settledStats(http.port);
    expect(s.open).toBe(1);
    // A close is seen when the server next reads that connection, which may
    // come after it answers the first /stats: each /stats asked is one more.
    expect(s.connections).toBe(20 + s.asked);
  });
});
