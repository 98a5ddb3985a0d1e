/**
 * Messages through the ws room, with the real `ws` client on both ends:
 * what one client sends, the other receives with exactly the same bytes
 * and the same type (text or binary) — whole, empty, up to the 1 MiB
 * limit, and sent in fragments (ws's `fin: false`), including a UTF-8
 * character cut across two fragments and a ping between fragments. The
 * sender never receives its own message.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { problems, sha256, sleep } from '../helpers/server.js';
import { startWs, openClient, closeWsClients, nextMessages, record, type WebSocket, type WsServer } from '../helpers/ws.js';

const MiB = 1024 * 1024;

let ws: WsServer;
let a: WebSocket;
let b: WebSocket;

beforeAll(async () => {
  ws = await startWs();
});

// A fresh pair per test: a message left over from one test cannot pass for another's.
afterEach(() => closeWsClients());

afterAll(async () => {
  closeWsClients();
  await ws?.stop();
});

async function pair(): Promise<void> {
  a = await openClient(ws.url);
  b = await openClient(ws.url);
}

/** Sends one message from a (a function of a) and returns what b receives. */
async function through(send: () => void, timeoutMs = 10_000) {
  const got = nextMessages(b, 1, timeoutMs);
  send();
  const [m] = await got;
  return m!;
}

describe('ws messages: whole', () => {
  it.each([
    ['ASCII text', 'hello, room'],
    ['empty text', ''],
    ['multi-byte UTF-8 text', 'κόσμε · 日本語 · 😀🎉 · \u{10ffff}'],
    ['text of 125 bytes (7-bit length)', 'x'.repeat(125)],
    ['text of 126 bytes (16-bit length)', 'y'.repeat(126)],
    ['text of 65,536 bytes (64-bit length)', 'z'.repeat(65_536)],
  ])('%s arrives as the same text', async (_name, text) => {
    await pair();
    const m = await through(() => a.send(text));
    expect(m.binary).toBe(false);
    expect(m.data.toString('utf8')).toBe(text);
  });

  it.each([
    ['1 byte', 1],
    ['empty', 0],
    ['64 KiB', 64 * 1024],
    ['1 MiB (the default limit)', MiB],
  ])('binary, %s, arrives as the same bytes', async (_name, size) => {
    await pair();
    const data = randomBytes(size);
    const m = await through(() => a.send(data, { binary: true }), 30_000);
    expect(m.binary).toBe(true);
    expect(m.data.length).toBe(size);
    expect(sha256(m.data)).toBe(sha256(data));
  });

  it('binary bytes that are invalid UTF-8 pass untouched', async () => {
    await pair();
    const data = Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]);
    const m = await through(() => a.send(data, { binary: true }));
    expect(m.binary).toBe(true);
    expect(m.data).toEqual(data);
  });

  it('does not send a message back to its sender', async () => {
    await pair();
    const own = record(a);
    await through(() => a.send('only for b'));
    // b's reply reaches a; had a's own message come back it would be first.
    const reply = nextMessages(a, 1);
    b.send('reply');
    expect((await reply)[0]!.data.toString()).toBe('reply');
    await sleep(50);
    expect(own.map((m) => m.data.toString())).toEqual(['reply']);
  });

  it('keeps the order of 1,000 messages of mixed types and sizes', async () => {
    await pair();
    const sent = Array.from({ length: 1000 }, (_, i) => (i % 3 === 0 ? randomBytes(i % 200) : `message ${i} ${'·'.repeat(i % 50)}`));
    const got = nextMessages(b, sent.length);
    for (const m of sent) a.send(m, { binary: typeof m !== 'string' });
    const received = await got;
    received.forEach((m, i) => {
      const s = sent[i]!;
      expect(m.binary, `message ${i}`).toBe(typeof s !== 'string');
      expect(m.binary ? m.data : m.data.toString('utf8'), `message ${i}`).toEqual(s);
    });
  });
});

describe('ws messages: fragmented', () => {
  it('reassembles a text message sent in three fragments', async () => {
    await pair();
    const m = await through(() => {
      a.send('one ', { fin: false });
      a.send('two ', { fin: false });
      a.send('three', { fin: true });
    });
    expect(m.binary).toBe(false);
    expect(m.data.toString()).toBe('one two three');
  });

  it('reassembles a binary message sent in 100 fragments of random sizes', async () => {
    await pair();
    const parts = Array.from({ length: 100 }, (_, i) => randomBytes((i * 37) % 3000));
    const m = await through(() => parts.forEach((p, i) => a.send(p, { binary: true, fin: i === parts.length - 1 })));
    expect(m.binary).toBe(true);
    expect(m.data.equals(Buffer.concat(parts))).toBe(true);
  });

  it('accepts a UTF-8 character cut across two fragments', async () => {
    await pair();
    const bytes = Buffer.from('before 😀 after', 'utf8');
    const cut = bytes.indexOf(0xf0) + 2; // inside the 4-byte emoji
    const m = await through(() => {
      a.send(bytes.subarray(0, cut), { binary: false, fin: false });
      a.send(bytes.subarray(cut), { binary: false, fin: true });
    });
    expect(m.binary).toBe(false);
    expect(m.data.toString('utf8')).toBe('before 😀 after');
  });

  it('accepts empty fragments, first, middle and last', async () => {
    await pair();
    const m = await through(() => {
      a.send('', { fin: false });
      a.send('middle', { fin: false });
      a.send('', { fin: false });
      a.send('', { fin: true });
    });
    expect(m.data.toString()).toBe('middle');
  });

  it('answers a ping sent between two fragments and still delivers the message whole', async () => {
    await pair();
    const pong = new Promise<Buffer>((r) => a.once('pong', r));
    const m = await through(() => {
      a.send('first half, ', { fin: false });
      a.ping('between');
      a.send('second half', { fin: true });
    });
    expect(m.data.toString()).toBe('first half, second half');
    expect((await pong).toString()).toBe('between');
  });

  it('delivers a fragmented 1 MiB message (64 fragments of 16 KiB) intact', async () => {
    await pair();
    const data = randomBytes(MiB);
    const m = await through(() => {
      for (let off = 0; off < data.length; off += 16 * 1024) {
        a.send(data.subarray(off, off + 16 * 1024), { binary: true, fin: off + 16 * 1024 >= data.length });
      }
    }, 30_000);
    expect(sha256(m.data)).toBe(sha256(data));
  });

  it('logs no warnings or errors throughout', () => {
    expect(problems(ws.logs)).toEqual([]);
  });
});
