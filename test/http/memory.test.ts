/**
 * The http plugin's memory under its instance's cap (64 MiB by default): an
 * allocation that fails traps the instance and drops every connection, so
 * none of these may end it.
 *
 *  - Thousands of connections, one after another: each connection's
 *    buffers must be given back when it closes (they are not the garbage
 *    collector's; before Server freed them, ~3,070 connections trapped).
 *  - Many 1 MiB bodies at once: they draw on one body budget (8 MiB by
 *    default); past it, 503 with Retry-After instead of running out.
 *  - Many 1 MiB bodies one after another on connections that stay open: the
 *    buffers that grew for each are given back after its response.
 */
import { describe, it, expect, afterEach } from 'vitest';
import type net from 'node:net';
import { connect, destroyClients, problems, runPool, waitFor, withTimeout } from '../helpers/server.js';
import { RawClient, get, parseResponse, startHttp, type HttpResponse, type HttpServer } from '../helpers/http.js';

const MiB = 1024 * 1024;
let running: HttpServer | null = null;

afterEach(async () => {
  destroyClients();
  await running?.stop();
  running = null;
});

/** The instance never ended (no trap, no restart) and logged nothing bad. */
function expectUnharmed(http: HttpServer): void {
  const s = http.server.stats()[0]!;
  expect(s.ends).toEqual({});
  expect(s.restarts).toBe(0);
  expect(s.running).toBe(true);
  expect(problems(http.logs)).toEqual([]);
}

/** POSTs a `size`-byte body to /echo on `sock` and reads the whole response. */
function upload(sock: net.Socket, size: number, timeoutMs = 20_000): Promise<HttpResponse> {
  return withTimeout(
    new Promise<HttpResponse>((resolve, reject) => {
      let buf = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const r = parseResponse(buf);
        if (r) {
          sock.off('data', onData);
          resolve(r.response);
        }
      };
      sock.on('data', onData);
      sock.once('close', () => reject(new Error(`closed after ${buf.length} bytes`)));
      sock.write(`POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${size}\r\n\r\n`);
      sock.write(Buffer.alloc(size, 0x61));
    }),
    timeoutMs,
    `a ${size}-byte upload`,
  );
}

describe('http memory', () => {
  it('serves 5,000 connections one after another (each closed) without running out', async () => {
    const http = (running = await startHttp());
    await runPool(5_000, 20, async () => {
      const c = await RawClient.open(http.port);
      c.send(get('/'));
      const r = await c.response();
      if (r.status !== 200) throw new Error(`status ${r.status}`);
      c.close();
    });
    expectUnharmed(http);
  }, 60_000);

  it('answers 40 simultaneous 1 MiB uploads with 200 or 503 (Retry-After), never running out', async () => {
    const http = (running = await startHttp());
    const socks = await Promise.all(Array.from({ length: 40 }, () => connect(http.port)));
    const results = await Promise.all(socks.map((s) => upload(s, MiB).catch((e: Error) => e)));
    const statuses = results.map((r) => (r instanceof Error ? r.message : r.status));
    // Every request was answered (a 503 closes its connection after the response).
    expect(
      statuses.every((s) => s === 200 || s === 503),
      String(statuses),
    ).toBe(true);
    // The default budget (8 MiB) covers at least eight at once.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(8);
    for (const r of results) {
      if (r instanceof Error) continue;
      if (r.status === 200) expect(r.body.length).toBe(MiB);
      else expect(r.headers['retry-after']).toBe('1');
    }
    expectUnharmed(http);
  }, 60_000);

  it('draws the budget while bodies arrive and repays it once their responses are sent', async () => {
    const http = (running = await startHttp({ config: `body-budget=${2 * MiB}` }));
    const head = `POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: ${MiB}\r\n\r\n`;
    // Two bodies under way take the whole budget ...
    const a = await RawClient.open(http.port);
    const b = await RawClient.open(http.port);
    a.send(head + 'x'.repeat(1000));
    b.send(head + 'y'.repeat(1000));
    // (once the plugin has read both heads: otherwise the third could draw first)
    const sent = 2 * (head.length + 1000);
    expect(await waitFor(() => http.server.stats()[0]!.bytesIn >= sent, 5000)).toBe(true);
    // ... so a third is refused at once,
    const c = await RawClient.open(http.port);
    c.send(head);
    const refused = await c.response();
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['connection']).toBe('close');
    // and smaller requests without a body are still served.
    const d = await RawClient.open(http.port);
    d.send(get('/'));
    expect((await d.response()).status).toBe(200);
    // Once a's body is complete and its response sent, the budget covers another.
    a.send(Buffer.alloc(MiB - 1000, 0x78));
    const ra = await a.response({ timeoutMs: 10_000 });
    expect(ra.status).toBe(200);
    expect(ra.body.length).toBe(MiB);
    const e = await RawClient.open(http.port);
    e.send(head);
    e.send(Buffer.alloc(MiB, 0x7a));
    expect((await e.response({ timeoutMs: 10_000 })).status).toBe(200);
    expectUnharmed(http);
  }, 30_000);

  it('80 uploads of 1 MiB on 80 connections that stay open (8 at a time): every one served', async () => {
    const http = (running = await startHttp());
    const socks: net.Socket[] = [];
    for (let round = 0; round < 10; round++) {
      const batch = await Promise.all(Array.from({ length: 8 }, () => connect(http.port)));
      socks.push(...batch);
      const rs = await Promise.all(batch.map((s) => upload(s, MiB)));
      // Each round's budget was repaid as its responses went out: no 503.
      expect(rs.map((r) => r.status)).toEqual(Array(8).fill(200));
    }
    expect(http.server.stats()[0]!.open).toBe(80);
    expectUnharmed(http);
  }, 60_000);
});
