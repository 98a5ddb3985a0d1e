/**
 * The wire protocol on raw sockets, where redis-cli cannot go: inline
 * commands (what telnet users type), pipelines (replies in order), requests
 * split at every byte boundary, binary-safe keys and values, the size
 * limits, protocol errors (the error is sent, then the connection closed,
 * as Redis does) and the end of a connection (QUIT, a client that shuts
 * down its side).
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { RespClient, command, exchange, startResp, unharmed, type RespServer } from '../helpers/resp.js';
import { destroyClients, problems, sleep } from '../helpers/server.js';

let resp: RespServer;
const MiB = 1024 * 1024;

beforeAll(async () => {
  resp = await startResp();
});

afterEach(async () => {
  destroyClients();
  await exchange(resp.port, 'FLUSHALL\r\n', 1);
});

afterAll(async () => {
  destroyClients();
  if (!resp) return;
  expect(unharmed(resp)).toBe(true);
  await resp.stop();
});

describe('resp: inline commands', () => {
  it('runs a line of words, with or without CR, and ignores empty lines', async () => {
    const c = await RespClient.open(resp.port);
    c.send('PING\r\nSET greeting hello\nGET greeting\r\n\r\n\n   \r\nget   greeting  \r\n');
    expect(await c.replies(4)).toEqual(['+PONG\r\n', '+OK\r\n', '$5\r\nhello\r\n', '$5\r\nhello\r\n']);
    expect(await c.quiet(100)).toBe(true); // the empty lines got no reply
  });

  it('takes "quoted" arguments with escapes and \'single quotes\'', async () => {
    const replies = await exchange(resp.port, 'SET k "a b\\r\\n\\x41\\x7a\\"q\\\\"\r\nGET k\r\nECHO \'it\\\'s\'\r\nECHO ""\r\n', 4);
    expect(replies).toEqual(['+OK\r\n', '$10\r\na b\r\nAz"q\\\r\n', "$4\r\nit's\r\n", '$0\r\n\r\n']);
  });

  it('answers unbalanced quotes with a protocol error and closes', async () => {
    const c = await RespClient.open(resp.port);
    c.send('PING\r\nSET k "open\r\nPING\r\n');
    expect(await c.replies(2)).toEqual(['+PONG\r\n', '-ERR Protocol error: unbalanced quotes in request\r\n']);
    expect(await c.closed()).toBe(true);
    expect(c.received.length).toBe(0); // the PING after it was not run
  });

  it('refuses an inline request longer than 64 KiB', async () => {
    const c = await RespClient.open(resp.port);
    c.send(`ECHO ${'x'.repeat(70 * 1024)}`); // no newline yet
    expect(await c.reply()).toBe('-ERR Protocol error: too big inline request\r\n');
    expect(await c.closed()).toBe(true);
  });
});

describe('resp: pipelining', () => {
  it('answers 10,000 commands written at once, in order', async () => {
    const n = 10_000;
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      // Multibulk and inline mixed, every reply distinct.
      if (i % 3 === 0) parts.push(command('SET', `key:${i}`, `value:${i}`));
      else if (i % 3 === 1) parts.push(Buffer.from(`GET key:${i - 1}\r\n`));
      else parts.push(command('INCR', 'counter'));
    }
    const c = await RespClient.open(resp.port);
    c.send(Buffer.concat(parts));
    const replies = await c.replies(n, 20_000);
    for (let i = 0; i < n; i++) {
      const want = i % 3 === 0 ? '+OK\r\n' : i % 3 === 1 ? `$${`value:${i - 1}`.length}\r\nvalue:${i - 1}\r\n` : `:${(i + 1) / 3}\r\n`;
      if (replies[i] !== want) expect.fail(`reply ${i}: ${JSON.stringify(replies[i])} instead of ${JSON.stringify(want)}`);
    }
  });

  it('sends the replies before a protocol error, then closes', async () => {
    const c = await RespClient.open(resp.port);
    c.send(Buffer.concat([command('SET', 'a', '1'), command('GET', 'a'), Buffer.from('*1\r\n+x\r\n'), command('SET', 'b', '2')]));
    expect(await c.replies(3)).toEqual(['+OK\r\n', '$1\r\n1\r\n', "-ERR Protocol error: expected '$', got '+'\r\n"]);
    expect(await c.closed()).toBe(true);
    expect(await exchange(resp.port, 'EXISTS b\r\n', 1)).toEqual([':0\r\n']); // never run
  });

  it('QUIT in a pipeline: replies up to it, +OK, close; nothing after it runs', async () => {
    const c = await RespClient.open(resp.port);
    c.send('SET a 1\r\nQUIT\r\nSET b 2\r\n');
    expect(await c.replies(2)).toEqual(['+OK\r\n', '+OK\r\n']);
    expect(await c.closed()).toBe(true);
    expect(await exchange(resp.port, 'EXISTS a b\r\n', 1)).toEqual([':1\r\n']);
  });

  it('answers what a client sent before it shut down its side, then closes', async () => {
    const c = await RespClient.open(resp.port);
    c.send('SET a 1\r\nGET a\r\n');
    c.sock.end();
    expect(await c.replies(2)).toEqual(['+OK\r\n', '$1\r\n1\r\n']);
    expect(await c.closed()).toBe(true);
  });
});

describe('resp: requests split anywhere', () => {
  // A pipeline of both kinds of request, with a binary value holding CR, LF
  // and NUL where the protocol's own delimiters could be mistaken for them.
  const value = Buffer.from([0x0d, 0x0a, 0x00, 0x24, 0x2a, 0x0d, 0x0a, 0xff]);
  const requests = Buffer.concat([command('SET', 'split', value), Buffer.from('GET split\r\n'), command('ECHO', 'tail')]);
  const expected = ['+OK\r\n', `$8\r\n${value.toString('latin1')}\r\n`, '$4\r\ntail\r\n'];

  it(`gives the same replies wherever the bytes are cut (every one of ${requests.length - 1} positions)`, async () => {
    for (let cut = 1; cut < requests.length; cut++) {
      const c = await RespClient.open(resp.port);
      c.send(requests.subarray(0, cut));
      await sleep(3); // let the server read the first part on its own
      c.send(requests.subarray(cut));
      const got = await c.replies(3);
      if (got.join('') !== expected.join('')) expect.fail(`cut at byte ${cut}: ${JSON.stringify(got)}`);
      c.destroy();
    }
  }, 60_000);

  it('gives the same replies when the bytes arrive one at a time', async () => {
    const c = await RespClient.open(resp.port);
    for (let i = 0; i < requests.length; i++) {
      c.send(requests.subarray(i, i + 1));
      await sleep(1);
    }
    expect(await c.replies(3)).toEqual(expected);
  }, 30_000);
});

describe('resp: binary safety and sizes', () => {
  it('stores keys and values holding every byte value', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const key = Buffer.concat([Buffer.from('k\r\n\0'), all]);
    const replies = await exchange(
      resp.port,
      Buffer.concat([
        command('SET', key, all),
        command('GET', key),
        command('MGET', key, all),
        command('EXISTS', key),
        command('STRLEN-IS-NOT-HERE'),
      ]),
      5,
    );
    expect(replies[0]).toBe('+OK\r\n');
    expect(Buffer.from(replies[1]!, 'latin1').equals(Buffer.concat([Buffer.from('$256\r\n'), all, Buffer.from('\r\n')]))).toBe(true);
    expect(Buffer.from(replies[2]!, 'latin1').equals(Buffer.concat([Buffer.from('*2\r\n$256\r\n'), all, Buffer.from('\r\n$-1\r\n')]))).toBe(
      true,
    );
    expect(replies[3]).toBe(':1\r\n');
    expect(replies[4]).toBe("-ERR unknown command 'STRLEN-IS-NOT-HERE', with args beginning with: \r\n");
  });

  it('stores a 1 MiB value sent in pieces and returns it whole', async () => {
    const big = Buffer.alloc(MiB);
    for (let i = 0; i < big.length; i++) big[i] = (i * 131) & 0xff;
    const c = await RespClient.open(resp.port);
    const req = command('SET', 'big', big);
    for (let off = 0; off < req.length; off += 100_000) c.send(req.subarray(off, off + 100_000));
    expect(await c.reply()).toBe('+OK\r\n');
    c.send(command('GET', 'big'));
    const got = Buffer.from(await c.reply(), 'latin1');
    const head = `$${MiB}\r\n`;
    expect(got.subarray(0, head.length).toString()).toBe(head);
    expect(got.subarray(head.length, head.length + MiB).equals(big)).toBe(true);
  });

  it('refuses a bulk longer than proto-max-bulk-len before reading it', async () => {
    const c = await RespClient.open(resp.port);
    c.send(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${String(9 * MiB)}\r\n`); // default limit: 8 MiB (an eighth of the 64 MiB cap)
    expect(await c.reply()).toBe('-ERR Protocol error: invalid bulk length\r\n');
    expect(await c.closed()).toBe(true);
  });

  it('closes a client whose request outgrows client-query-buffer-limit', async () => {
    const small = await startResp({ config: 'proto-max-bulk-len=64kb client-query-buffer-limit=100kb' });
    try {
      const c = await RespClient.open(small.port);
      // Two bulks of 60 KiB each are allowed, but not in one request.
      c.send(Buffer.concat([Buffer.from('*3\r\n$4\r\nMSET\r\n$61440\r\n'), Buffer.alloc(61440, 0x61), Buffer.from('\r\n$61440\r\n')]));
      expect(await c.closed()).toBe(true);
      expect(c.received.length).toBe(0);
      expect(small.logs.some((l) => l.level === 'warn' && /client-query-buffer-limit/.test(l.message))).toBe(true);
      expect(unharmed(small)).toBe(true);
    } finally {
      await small.stop();
    }
  });

  it.each([
    ['a count that is not a number', '*x\r\n', 'invalid multibulk length'],
    ['an argument that is not a bulk', '*1\r\nx\r\n', "expected '$', got 'x'"],
    ['a negative bulk length', '*1\r\n$-1\r\n', 'invalid bulk length'],
    ['a bulk length with a leading zero', '*1\r\n$01\r\n', 'invalid bulk length'],
    ['a 70 KiB bulk length line', `*1\r\n$${'x'.repeat(70 * 1024)}`, 'too big bulk count string'],
    ['a 70 KiB count line', `*${'1'.repeat(70 * 1024)}`, 'too big mbulk count string'],
    ['more than 65,536 arguments', '*65537\r\n', 'invalid multibulk length'],
  ])('answers %s with its protocol error and closes', async (_what, bytes, error) => {
    const c = await RespClient.open(resp.port);
    c.send(bytes);
    expect(await c.reply()).toBe(`-ERR Protocol error: ${error}\r\n`);
    expect(await c.closed()).toBe(true);
  });

  it('takes requests of up to 65,536 arguments (MSET of 32,767 keys, MGET and DEL of 65,535)', async () => {
    const keys = Array.from({ length: 32_767 }, (_, i) => `k${i}`);
    const c = await RespClient.open(resp.port);
    c.send(Buffer.concat([command('MSET', ...keys.flatMap((k) => [k, k])), command('DBSIZE')]));
    expect(await c.replies(2)).toEqual(['+OK\r\n', ':32767\r\n']);
    const many = [...keys, ...keys.map((k) => `missing:${k}`), 'k0'];
    c.send(command('MGET', ...many));
    const [mget] = await c.replies(1);
    expect(mget!.startsWith('*65535\r\n$2\r\nk0\r\n$2\r\nk1\r\n')).toBe(true);
    expect(mget!.endsWith('$-1\r\n$2\r\nk0\r\n')).toBe(true);
    c.send(command('DEL', ...many));
    expect(await c.reply()).toBe(':32767\r\n');
  });

  it('ignores empty multibulk requests (*0, *-1)', async () => {
    expect(await exchange(resp.port, '*0\r\n*-1\r\nPING\r\n', 1)).toEqual(['+PONG\r\n']);
  });

  it('logged no problem', () => {
    // The query buffer test used a server of its own: this one stays quiet.
    expect(problems(resp.logs)).toEqual([]);
  });
});
