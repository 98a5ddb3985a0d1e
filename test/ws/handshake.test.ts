/**
 * The ws plugin's opening handshake (RFC 6455 4.2): the real `ws` client
 * upgrades (it checks Sec-WebSocket-Accept itself), and raw sockets send
 * what a library would not — bad upgrades get the right HTTP status and
 * headers and the connection is closed; a request trickling in byte by
 * byte or followed at once by a frame is handled; a client that never
 * finishes its request is dropped after handshakeTimeoutMs.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { connect, sleep, totals, waitFor, problems } from '../helpers/server.js';
import {
  startWs,
  openClient,
  closeWsClients,
  nextMessages,
  rawHttp,
  upgradeRequest,
  frame,
  FrameReader,
  WebSocket,
  type WsServer,
} from '../helpers/ws.js';

let ws: WsServer;

beforeAll(async () => {
  ws = await startWs({ config: 'handshakeTimeoutMs=300' });
});

afterEach(() => closeWsClients());

afterAll(async () => {
  closeWsClients();
  await ws?.stop();
});

describe('ws handshake: accepted', () => {
  it('upgrades the ws client, with a correct Sec-WebSocket-Accept and no extension or subprotocol', async () => {
    const w = new WebSocket(ws.url); // perMessageDeflate offered (the default): must be declined
    const headers = new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
      w.once('upgrade', (res) => resolve(res.headers));
      w.once('error', reject);
    });
    await new Promise((r) => w.once('open', r));
    const h = await headers;
    expect(h['upgrade']?.toString().toLowerCase()).toBe('websocket');
    expect(h['connection']?.toString().toLowerCase()).toBe('upgrade');
    expect(h['sec-websocket-extensions']).toBeUndefined();
    expect(h['sec-websocket-protocol']).toBeUndefined();
    expect(w.extensions).toBe('');
    w.close();
  });

  it('answers the RFC 6455 example key with the RFC example accept value', async () => {
    const sock = await connect(ws.port);
    const reader = new FrameReader(sock);
    sock.write(upgradeRequest({ 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' }));
    const head = await reader.readHttpHead();
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    expect(`${head}\r\n`).toContain('\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n');
  });

  it('computes the accept value right for 200 random keys (guest SHA-1 and base64 against node:crypto)', async () => {
    for (let i = 0; i < 200; i++) {
      const key = createHash('md5').update(String(i)).digest('base64'); // 16 bytes
      const sock = await connect(ws.port);
      const reader = new FrameReader(sock);
      sock.write(upgradeRequest({ 'Sec-WebSocket-Key': key }));
      const head = await reader.readHttpHead();
      const expected = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      expect(`${head}\r\n`).toContain(`\r\nSec-WebSocket-Accept: ${expected}\r\n`);
      sock.destroy();
    }
  });

  it('accepts header names in any case and token lists ("keep-alive, Upgrade")', async () => {
    const req =
      'GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\n' +
      'sec-websocket-version: 13\r\nSEC-WEBSOCKET-KEY: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n';
    const sock = await connect(ws.port);
    const reader = new FrameReader(sock);
    sock.write(req);
    expect((await reader.readHttpHead()).split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
  });

  it('handles a request that arrives one byte at a time', async () => {
    const sock = await connect(ws.port);
    const reader = new FrameReader(sock);
    for (const b of Buffer.from(upgradeRequest())) {
      sock.write(Buffer.from([b]));
      await sleep(1);
    }
    expect((await reader.readHttpHead()).split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
  });

  it('reads a frame sent in the same packet as the request', async () => {
    const listener = await openClient(ws.url);
    const got = nextMessages(listener, 1);
    const sock = await connect(ws.port);
    const reader = new FrameReader(sock);
    sock.write(Buffer.concat([Buffer.from(upgradeRequest()), frame(1, 'sent without waiting')]));
    expect((await reader.readHttpHead()).split('\r\n')[0]).toBe('HTTP/1.1 101 Switching Protocols');
    const [m] = await got;
    expect(m!.data.toString()).toBe('sent without waiting');
  });
});

describe('ws handshake: refused', () => {
  it.each([
    ['a plain GET (no Upgrade, no Connection)', 426, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['Upgrade without Connection: Upgrade', 426, upgradeRequest({ Connection: 'keep-alive' })],
    ['Connection: Upgrade without Upgrade: websocket', 426, upgradeRequest({ Upgrade: 'h2c' })],
    ['Sec-WebSocket-Version 8', 426, upgradeRequest({ 'Sec-WebSocket-Version': '8' })],
    ['no Sec-WebSocket-Version', 426, upgradeRequest({ 'Sec-WebSocket-Version': null })],
    ['no Sec-WebSocket-Key', 400, upgradeRequest({ 'Sec-WebSocket-Key': null })],
    ['a key that is not base64', 400, upgradeRequest({ 'Sec-WebSocket-Key': 'not base64 at all!!!!!==' })],
    ['a key of 15 bytes', 400, upgradeRequest({ 'Sec-WebSocket-Key': Buffer.alloc(15).toString('base64') })],
    ['a key of 17 bytes', 400, upgradeRequest({ 'Sec-WebSocket-Key': Buffer.alloc(17).toString('base64') })],
    ['no Host', 400, upgradeRequest({ Host: null })],
    ['HTTP/1.0', 400, upgradeRequest({}, 'GET / HTTP/1.0')],
    ['a malformed request line', 400, upgradeRequest({}, 'GET/HTTP/1.1')],
    ['a header line without a colon', 400, 'GET / HTTP/1.1\r\nHost x\r\n\r\n'],
    ['obsolete line folding', 400, 'GET / HTTP/1.1\r\nHost: x\r\n continued\r\n\r\n'],
    ['POST', 405, upgradeRequest({}, 'POST / HTTP/1.1')],
    ['a lowercase method', 405, upgradeRequest({}, 'get / HTTP/1.1')],
  ])('%s → %i', async (_name, status, request) => {
    const a = await rawHttp(ws.port, request);
    expect(a.status).toBe(status);
    expect(a.ended).toBe(true);
    expect(a.headers['connection']?.toLowerCase()).toContain('close');
    expect(Number(a.headers['content-length'])).toBe(Buffer.byteLength(a.body));
    if (status === 426) {
      expect(a.headers['upgrade']).toBe('websocket');
      expect(a.headers['sec-websocket-version']).toBe('13');
    }
    if (status === 405) expect(a.headers['allow']).toBe('GET');
  });

  it('refuses a request head over maxRequest (8 KiB) with 431', async () => {
    const a = await rawHttp(ws.port, upgradeRequest({ 'X-Padding': 'x'.repeat(9000) }));
    expect(a.status).toBe(431);
    expect(a.ended).toBe(true);
  });

  it('refuses an endless head that never reaches its blank line with 431', async () => {
    const a = await rawHttp(ws.port, `GET / HTTP/1.1\r\n${'X: y\r\n'.repeat(2000)}`);
    expect(a.status).toBe(431);
  });

  it('the ws client reports a refused upgrade as an unexpected response', async () => {
    const w = new WebSocket(ws.url, { protocolVersion: 8 });
    const status = await new Promise<number>((resolve) => {
      w.once('unexpected-response', (_req, res) => resolve(res.statusCode!));
      w.once('error', () => {});
    });
    expect(status).toBe(426);
    w.terminate();
  });
});

describe('ws handshake: timeout', () => {
  it('closes a connection that does not complete its request within handshakeTimeoutMs', async () => {
    const t = performance.now(); // before the accept that starts the plugin's timer
    const sock = await connect(ws.port);
    const reader = new FrameReader(sock);
    sock.write('GET / HTTP/1.1\r\nHost: x\r\n'); // never finished
    await reader.end(5_000);
    const ms = performance.now() - t;
    expect(ms).toBeGreaterThan(200);
    expect(ms).toBeLessThan(2_000);
    // Every earlier test's client is gone by now (afterEach), and this one was dropped.
    expect(await waitFor(() => totals(ws.server).open === 0, 2_000)).toBe(true);
  });

  it('logs no warnings or errors throughout', () => {
    expect(problems(ws.logs)).toEqual([]);
  });
});
