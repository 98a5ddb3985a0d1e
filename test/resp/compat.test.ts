/**
 * Byte-for-byte the replies of a real redis-server (Debian's 7.0, started
 * here on a free loopback port with persistence off): the same requests go
 * to both, on fresh keyspaces, and every byte that comes back must match,
 * errors, protocol errors and the closing of the connection included.
 *
 * Only what both have is compared: the plugin has one database (SELECT 1 is
 * an error here), no other data types, and COMMAND DOCS without the
 * argument lists.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  RespClient,
  command,
  missing,
  startRedisServer,
  startResp,
  stopRedisServer,
  unharmed,
  type RedisServer,
  type RespServer,
} from '../helpers/resp.js';
import { destroyClients } from '../helpers/server.js';

const noServer = missing('redis-server');
let resp: RespServer;
let redis: RedisServer;

/** Sends `data` on a fresh connection and collects everything until the server closes or goes quiet. */
async function transcript(port: number, data: string | Buffer): Promise<string> {
  const c = await RespClient.open(port);
  try {
    c.send('FLUSHALL\r\n');
    expect(await c.reply()).toBe('+OK\r\n');
    c.send(data);
    // Until 150 ms pass with nothing new (or the server closes).
    for (;;) {
      const before = c.received.length;
      const closed = await c.closed(150);
      if (closed || c.received.length === before) return c.received.toString('latin1') + (closed ? ' [closed]' : '');
    }
  } finally {
    c.destroy();
  }
}

const CASES: [string, string | Buffer][] = [
  ['unknown commands', 'FOO a b\r\nFOO\r\nfoo "a\\r\\nb"\r\n'],
  ['arity errors', 'get\r\nset k\r\nmset a\r\nmset a b c\r\nexists\r\nttl\r\ndbsize x\r\necho\r\nping a b\r\nincrby n\r\n'],
  ['containers', 'config\r\nconfig get\r\nconfig foo\r\ncommand foo\r\ncommand count x\r\n'],
  [
    'SET grammar',
    'set a 1 nx xx\r\nset a 1 ex\r\nset a 1 ex 10 px 10\r\nset a 1 keepttl ex 5\r\nset a 1 ex 5 keepttl\r\nset a 1 foo\r\n' +
      'set a 1 ex a\r\nset a 1 ex 0\r\nset a 1 px -1\r\nset a 1 ex 9223372036854775\r\nset a 1 px 9223372036854775807\r\n' +
      'set a 1 exat 9223372036854775\r\nset a 1 ex 10 ex 20\r\nttl a\r\nset a 1 nx nx\r\n',
  ],
  [
    'SET NX XX GET KEEPTTL',
    'set k v get\r\nset k w nx get\r\nset k2 w xx get\r\nset k x ex 100\r\nset k y keepttl\r\nttl k\r\n' +
      'set k z pxat 1\r\nget k\r\nset a 1 px 100 nx\r\nset a 1 px 100 xx get\r\nset a 2 get nx\r\n',
  ],
  [
    'integers',
    'set a 1\r\nset n 01\r\nincr n\r\nset n " 1"\r\nincr n\r\nincrby n +1\r\nset n -0\r\nincr n\r\nset n 1\r\n' +
      'incrby n -9223372036854775808\r\ndecr n\r\ndecr n\r\nset m 9223372036854775807\r\nincrby m 0\r\nincrby m 1\r\n' +
      'decrby m -9223372036854775808\r\nincr fresh\r\ndecrby fresh 5\r\nset big 99999999999999999999\r\nincr big\r\n',
  ],
  ['keys', 'mset a 1 b 2\r\nexists a a b nope\r\ndel a a nope\r\nmget a b c\r\ndbsize\r\nflushall foo\r\nflushall async\r\ndbsize\r\n'],
  // TTL of a 1,200 ms expiry rounds to 1 s on both servers whatever the milliseconds between the
  // commands; PTTL would not compare byte for byte (test/resp/cli.test.ts checks it within bounds).
  [
    'EXPIRE',
    'set a 1\r\nexpire a -1\r\nexists a\r\nset a 1\r\npexpire a 1200\r\nttl a\r\nttl nokey\r\nset b 1\r\nttl b\r\n' +
      'expire b 10 gt\r\nexpire b 10 lt\r\nexpire b 20 gt\r\nexpire b 5 nx\r\nexpire b 5 xx\r\npexpire b 9223372036854775807\r\n' +
      'expire b 9223372036854775\r\nexpire b x\r\nexpire b 10 nx xx\r\nexpire b 10 gt lt\r\nexpire b 10 foo\r\nexpire nokey 10\r\n',
  ],
  ['PING ECHO QUIT', 'ping\r\nping a\r\necho "x y"\r\nquit extra\r\nping\r\n'],
  ['CONFIG GET for tools', 'config get save\r\nconfig get appendonly\r\nconfig get nosuch\r\n'],
  ['COMMAND INFO', 'command info get mget set del incr ttl nosuch\r\n'],
  ['inline quoting', "echo 'it\\'s'\r\necho \"a\"b\r\n"],
  ['inline escapes', 'echo "\\x41\\x4g\\n\\q\\t"\r\necho  x   \n\r\n\r\nping\r\n'],
  ['pipelined multibulk', Buffer.concat([command('SET', 'k', ''), command('GET', 'k'), command('ECHO', 'abc'), command('MGET', 'k', 'x')])],
  [
    'binary values',
    Buffer.concat([command('SET', Buffer.from([0, 13, 10, 255]), Buffer.from([13, 10, 0])), command('GET', Buffer.from([0, 13, 10, 255]))]),
  ],
  ['empty multibulk', '*0\r\n*-1\r\nping\r\n'],
  ['protocol error: bad count', '*x\r\n'],
  ['protocol error: not a bulk', 'ping\r\n*1\r\nx\r\n'],
  ['protocol error: bad length', '*1\r\n$-1\r\n'],
  ['protocol error: quotes', 'set "a b\r\nping\r\n'],
  ['a bulk longer than announced', '*2\r\n$4\r\necho\r\n$3\r\nabcde\r\n'],
];

describe.skipIf(noServer !== null)(`resp against redis-server${noServer ? ` — skipped: ${noServer}` : ''}`, () => {
  beforeAll(async () => {
    [resp, redis] = await Promise.all([startResp(), startRedisServer()]);
  });

  afterAll(async () => {
    destroyClients();
    if (redis) await stopRedisServer(redis);
    if (resp) {
      expect(unharmed(resp)).toBe(true);
      await resp.stop();
    }
  });

  it.each(CASES)('%s: the same bytes back', async (_name, data) => {
    const [ours, theirs] = await Promise.all([transcript(resp.port, data), transcript(redis.port, data)]);
    expect(ours).toBe(theirs);
  });
});
