/**
 * Every command of the resp plugin, and every error it can answer, through
 * redis-cli: a real client, its arguments passed as argv, its output read
 * in --no-raw form (what a terminal shows: OK, "value", (integer) 1, (nil),
 * (error) ERR ...), which also checks that each reply has the RESP type
 * Redis gives it. The error texts are Redis 7.0's, byte for byte
 * (test/resp/compat.test.ts compares them against a real redis-server).
 */
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { cli, missing, startResp, unharmed, type RespServer } from '../helpers/resp.js';
import { problems } from '../helpers/server.js';

const noCli = missing('redis-cli');
let resp: RespServer;

/** Runs redis-cli with `args` and expects exactly `lines` (its output, one line each). */
async function expectCli(args: string[], ...lines: string[]): Promise<void> {
  expect(await cli(resp.port, args), `redis-cli ${args.join(' ')}`).toBe(lines.map((l) => `${l}\n`).join(''));
}

const arity = (name: string) => `(error) ERR wrong number of arguments for '${name}' command`;
const SYNTAX = '(error) ERR syntax error';
const NOT_INTEGER = '(error) ERR value is not an integer or out of range';

describe.skipIf(noCli !== null)(`resp through redis-cli${noCli ? ` — skipped: ${noCli}` : ''}`, () => {
  beforeAll(async () => {
    resp = await startResp();
  });

  beforeEach(async () => {
    await expectCli(['FLUSHALL'], 'OK');
  });

  afterAll(async () => {
    if (!resp) return;
    // Nothing in here may have hurt the instance.
    expect(unharmed(resp)).toBe(true);
    expect(problems(resp.logs)).toEqual([]);
    await resp.stop();
  });

  it('PING, ECHO', async () => {
    await expectCli(['PING'], 'PONG');
    await expectCli(['ping', 'hello world'], '"hello world"');
    await expectCli(['PING', 'a', 'b'], arity('ping'));
    await expectCli(['ECHO', 'x y'], '"x y"');
    await expectCli(['ECHO', ''], '""');
    await expectCli(['ECHO'], arity('echo'));
    await expectCli(['ECHO', 'a', 'b'], arity('echo'));
  });

  it('SET and GET', async () => {
    await expectCli(['GET', 'k'], '(nil)');
    await expectCli(['SET', 'k', 'v 1'], 'OK');
    await expectCli(['GET', 'k'], '"v 1"');
    await expectCli(['set', 'k', 'v2'], 'OK');
    await expectCli(['get', 'k'], '"v2"');
    await expectCli(['SET', 'empty', ''], 'OK');
    await expectCli(['GET', 'empty'], '""');
    await expectCli(['SET', 'k'], arity('set'));
    await expectCli(['GET'], arity('get'));
    await expectCli(['GET', 'a', 'b'], arity('get'));
  });

  it('SET NX and XX', async () => {
    await expectCli(['SET', 'k', '1', 'XX'], '(nil)');
    await expectCli(['GET', 'k'], '(nil)');
    await expectCli(['SET', 'k', '1', 'NX'], 'OK');
    await expectCli(['SET', 'k', '2', 'nx'], '(nil)');
    await expectCli(['GET', 'k'], '"1"');
    await expectCli(['SET', 'k', '3', 'xx'], 'OK');
    await expectCli(['GET', 'k'], '"3"');
    await expectCli(['SET', 'k', '4', 'NX', 'XX'], SYNTAX);
    await expectCli(['SET', 'k', '4', 'XX', 'NX'], SYNTAX);
    await expectCli(['SET', 'k', '4', 'NX', 'NX'], '(nil)'); // repeating an option is allowed
  });

  it('SET EX, PX, EXAT, PXAT, KEEPTTL and their combinations', async () => {
    await expectCli(['SET', 'k', 'v', 'EX', '100'], 'OK');
    await expectCli(['TTL', 'k'], '(integer) 100');
    await expectCli(['SET', 'k', 'v', 'PX', '50000', 'NX'], '(nil)');
    await expectCli(['SET', 'k', 'v', 'XX', 'PX', '50000'], 'OK');
    const pttl = Number((await cli(resp.port, ['PTTL', 'k'])).replace('(integer) ', ''));
    expect(pttl).toBeGreaterThan(45_000);
    expect(pttl).toBeLessThanOrEqual(50_000);
    await expectCli(['SET', 'k', 'w', 'KEEPTTL'], 'OK');
    await expectCli(['TTL', 'k'], '(integer) 50');
    await expectCli(['SET', 'k', 'w'], 'OK'); // a plain SET drops the deadline
    await expectCli(['TTL', 'k'], '(integer) -1');
    await expectCli(['SET', 'k', 'v', 'EX', '10', 'EX', '20'], 'OK'); // the last one counts
    await expectCli(['TTL', 'k'], '(integer) 20');
    const inAnHour = Math.floor(Date.now() / 1000) + 3600;
    await expectCli(['SET', 'k', 'v', 'EXAT', String(inAnHour)], 'OK');
    const ttl = Number((await cli(resp.port, ['TTL', 'k'])).replace('(integer) ', ''));
    expect(ttl).toBeGreaterThanOrEqual(3598);
    expect(ttl).toBeLessThanOrEqual(3600);
    await expectCli(['SET', 'k', 'v', 'PXAT', String(Date.now() + 60_000)], 'OK');
    await expectCli(['TTL', 'k'], '(integer) 60');
    await expectCli(['SET', 'k', 'v', 'PXAT', '1'], 'OK'); // in the past: set, then gone
    await expectCli(['GET', 'k'], '(nil)');

    await expectCli(['SET', 'k', 'v', 'EX'], SYNTAX);
    await expectCli(['SET', 'k', 'v', 'EX', '10', 'PX', '10'], SYNTAX);
    await expectCli(['SET', 'k', 'v', 'PX', '10', 'EXAT', '10'], SYNTAX);
    await expectCli(['SET', 'k', 'v', 'EX', '10', 'KEEPTTL'], SYNTAX);
    await expectCli(['SET', 'k', 'v', 'KEEPTTL', 'PX', '10'], SYNTAX);
    await expectCli(['SET', 'k', 'v', 'FOO'], SYNTAX);
    await expectCli(['SET', 'k', 'v', 'EX', 'ten'], NOT_INTEGER);
    await expectCli(['SET', 'k', 'v', 'EX', '1.5'], NOT_INTEGER);
    await expectCli(['SET', 'k', 'v', 'EX', '0'], "(error) ERR invalid expire time in 'set' command");
    await expectCli(['SET', 'k', 'v', 'PX', '-5'], "(error) ERR invalid expire time in 'set' command");
    await expectCli(['SET', 'k', 'v', 'EX', '9223372036854775'], "(error) ERR invalid expire time in 'set' command");
    await expectCli(['SET', 'k', 'v', 'PX', '9223372036854775807'], "(error) ERR invalid expire time in 'set' command");
    await expectCli(['EXISTS', 'k'], '(integer) 0'); // no failed SET wrote anything
  });

  it('SET GET returns the old value', async () => {
    await expectCli(['SET', 'k', 'a', 'GET'], '(nil)');
    await expectCli(['SET', 'k', 'b', 'GET'], '"a"');
    await expectCli(['SET', 'k', 'c', 'NX', 'GET'], '"b"'); // not set, old value returned
    await expectCli(['GET', 'k'], '"b"');
  });

  it('DEL and EXISTS', async () => {
    await expectCli(['MSET', 'a', '1', 'b', '2'], 'OK');
    await expectCli(['EXISTS', 'a', 'a', 'b', 'nope'], '(integer) 3'); // a key named twice counts twice
    await expectCli(['DEL', 'a', 'a', 'nope'], '(integer) 1');
    await expectCli(['EXISTS', 'a'], '(integer) 0');
    await expectCli(['DEL', 'b'], '(integer) 1');
    await expectCli(['DEL'], arity('del'));
    await expectCli(['EXISTS'], arity('exists'));
  });

  it('INCR, INCRBY, DECR, DECRBY', async () => {
    await expectCli(['INCR', 'n'], '(integer) 1');
    await expectCli(['INCRBY', 'n', '41'], '(integer) 42');
    await expectCli(['DECR', 'n'], '(integer) 41');
    await expectCli(['DECRBY', 'n', '-9'], '(integer) 50');
    await expectCli(['GET', 'n'], '"50"');
    await expectCli(['DECR', 'fresh'], '(integer) -1');
    await expectCli(['SET', 'n', '9223372036854775807'], 'OK');
    await expectCli(['INCR', 'n'], '(error) ERR increment or decrement would overflow');
    await expectCli(['SET', 'n', '-9223372036854775808'], 'OK');
    await expectCli(['DECR', 'n'], '(error) ERR increment or decrement would overflow');
    await expectCli(['DECRBY', 'n', '-9223372036854775808'], '(error) ERR decrement would overflow');
    for (const bad of ['abc', ' 1', '+1', '01', '-0', '1.0', '', '99999999999999999999']) {
      await expectCli(['SET', 's', bad], 'OK');
      await expectCli(['INCR', 's'], NOT_INTEGER);
    }
    await expectCli(['INCRBY', 'n', 'x'], NOT_INTEGER);
    await expectCli(['INCR'], arity('incr'));
    await expectCli(['INCRBY', 'n'], arity('incrby'));
    await expectCli(['DECR', 'a', 'b'], arity('decr'));
    await expectCli(['DECRBY', 'n'], arity('decrby'));
    // INCR keeps a deadline.
    await expectCli(['SET', 'c', '1', 'EX', '100'], 'OK');
    await expectCli(['INCR', 'c'], '(integer) 2');
    await expectCli(['TTL', 'c'], '(integer) 100');
  });

  it('MGET and MSET', async () => {
    await expectCli(['MSET', 'a', '1', 'b', '', 'c', 'x y'], 'OK');
    await expectCli(['MGET', 'a', 'b', 'nope', 'c'], '1) "1"', '2) ""', '3) (nil)', '4) "x y"');
    await expectCli(['SET', 'd', 'v', 'EX', '100'], 'OK');
    await expectCli(['MSET', 'd', 'w'], 'OK'); // MSET drops deadlines like SET
    await expectCli(['TTL', 'd'], '(integer) -1');
    await expectCli(['MSET', 'a'], arity('mset'));
    await expectCli(['MSET', 'a', '1', 'b'], arity('mset'));
    await expectCli(['MGET'], arity('mget'));
  });

  it('EXPIRE, PEXPIRE, TTL, PTTL', async () => {
    await expectCli(['EXPIRE', 'nope', '10'], '(integer) 0');
    await expectCli(['TTL', 'nope'], '(integer) -2');
    await expectCli(['PTTL', 'nope'], '(integer) -2');
    await expectCli(['SET', 'k', 'v'], 'OK');
    await expectCli(['TTL', 'k'], '(integer) -1');
    await expectCli(['PTTL', 'k'], '(integer) -1');
    await expectCli(['EXPIRE', 'k', '100'], '(integer) 1');
    await expectCli(['TTL', 'k'], '(integer) 100');
    await expectCli(['PEXPIRE', 'k', '2400'], '(integer) 1');
    await expectCli(['TTL', 'k'], '(integer) 2'); // seconds, rounded to the nearest
    await expectCli(['EXPIRE', 'k', '-1'], '(integer) 1'); // a past deadline deletes
    await expectCli(['EXISTS', 'k'], '(integer) 0');
    await expectCli(['SET', 'k', 'v'], 'OK');
    await expectCli(['PEXPIRE', 'k', '0'], '(integer) 1');
    await expectCli(['EXISTS', 'k'], '(integer) 0');
  });

  it('EXPIRE NX, XX, GT, LT', async () => {
    await expectCli(['SET', 'k', 'v'], 'OK');
    await expectCli(['EXPIRE', 'k', '100', 'XX'], '(integer) 0'); // no deadline yet
    await expectCli(['EXPIRE', 'k', '100', 'GT'], '(integer) 0'); // none counts as infinite
    await expectCli(['EXPIRE', 'k', '100', 'NX'], '(integer) 1');
    await expectCli(['EXPIRE', 'k', '200', 'NX'], '(integer) 0');
    await expectCli(['EXPIRE', 'k', '50', 'GT'], '(integer) 0');
    await expectCli(['EXPIRE', 'k', '200', 'gt'], '(integer) 1');
    await expectCli(['EXPIRE', 'k', '300', 'LT'], '(integer) 0');
    await expectCli(['EXPIRE', 'k', '150', 'lt', 'xx'], '(integer) 1');
    await expectCli(['TTL', 'k'], '(integer) 150');
    await expectCli(['SET', 'p', 'v'], 'OK');
    await expectCli(['EXPIRE', 'p', '50', 'LT'], '(integer) 1');
    await expectCli(['TTL', 'p'], '(integer) 50');
  });

  it('EXPIRE errors', async () => {
    await expectCli(['SET', 'k', 'v'], 'OK');
    await expectCli(['EXPIRE', 'k', 'soon'], NOT_INTEGER);
    await expectCli(['EXPIRE', 'k', '10', 'NX', 'XX'], '(error) ERR NX and XX, GT or LT options at the same time are not compatible');
    await expectCli(['EXPIRE', 'k', '10', 'NX', 'GT'], '(error) ERR NX and XX, GT or LT options at the same time are not compatible');
    await expectCli(['EXPIRE', 'k', '10', 'GT', 'LT'], '(error) ERR GT and LT options at the same time are not compatible');
    await expectCli(['EXPIRE', 'k', '10', 'SOON'], '(error) ERR Unsupported option SOON');
    await expectCli(['EXPIRE', 'k', '9223372036854775'], "(error) ERR invalid expire time in 'expire' command");
    await expectCli(['PEXPIRE', 'k', '9223372036854775807'], "(error) ERR invalid expire time in 'pexpire' command");
    await expectCli(['EXPIRE', 'k'], arity('expire'));
    await expectCli(['PEXPIRE', 'k'], arity('pexpire'));
    await expectCli(['TTL'], arity('ttl'));
    await expectCli(['PTTL', 'a', 'b'], arity('pttl'));
    await expectCli(['TTL', 'k'], '(integer) -1'); // untouched by the failures
  });

  it('DBSIZE, FLUSHALL, FLUSHDB, SELECT', async () => {
    await expectCli(['DBSIZE'], '(integer) 0');
    await expectCli(['MSET', 'a', '1', 'b', '2', 'c', '3'], 'OK');
    await expectCli(['DBSIZE'], '(integer) 3');
    await expectCli(['DBSIZE', 'x'], arity('dbsize'));
    await expectCli(['FLUSHALL', 'ASYNC'], 'OK');
    await expectCli(['DBSIZE'], '(integer) 0');
    await expectCli(['SET', 'a', '1'], 'OK');
    await expectCli(['FLUSHDB', 'sync'], 'OK');
    await expectCli(['DBSIZE'], '(integer) 0');
    await expectCli(['FLUSHALL', 'NOW'], SYNTAX);
    await expectCli(['FLUSHALL', 'ASYNC', 'SYNC'], SYNTAX);
    await expectCli(['SELECT', '0'], 'OK');
    await expectCli(['SELECT', '1'], '(error) ERR DB index is out of range');
    await expectCli(['SELECT', 'one'], NOT_INTEGER);
    await expectCli(['SELECT', '99999999999'], '(error) ERR value is out of range, value must between -2147483648 and 2147483647');
  });

  it('COMMAND, COMMAND COUNT / LIST / INFO / DOCS / HELP', async () => {
    const names = (await cli(resp.port, ['COMMAND', 'LIST']))
      .trim()
      .split('\n')
      .map((l) => l.replace(/^\s*\d+\) "(.*)"$/, '$1'));
    for (const c of [
      'get',
      'set',
      'mget',
      'mset',
      'incr',
      'incrby',
      'decr',
      'decrby',
      'del',
      'exists',
      'expire',
      'pexpire',
      'ttl',
      'pttl',
      'dbsize',
      'flushall',
      'flushdb',
      'ping',
      'echo',
      'select',
      'quit',
      'info',
      'command',
      'command|docs',
      'command|count',
      'config',
      'config|get',
    ]) {
      expect(names, c).toContain(c);
    }
    const count = names.filter((n) => !n.includes('|')).length;
    await expectCli(['COMMAND', 'COUNT'], `(integer) ${count}`);
    await expectCli(['COMMAND', 'LIST', 'FILTERBY', 'PATTERN', 'p*'], '1) "pexpire"', '2) "pttl"', '3) "ping"');
    await expectCli(
      ['COMMAND', 'LIST', 'FILTERBY', 'ACLCAT', 'connection'],
      ' 1) "ping"',
      ' 2) "echo"',
      ' 3) "select"',
      ' 4) "quit"',
      ' 5) "command"',
      ' 6) "command|count"',
      ' 7) "command|docs"',
      ' 8) "command|info"',
      ' 9) "command|list"',
      '10) "command|help"',
    );
    await expectCli(['COMMAND', 'LIST', 'FILTERBY', 'MODULE', 'x'], '(empty array)');
    await expectCli(['COMMAND', 'LIST', 'SORTBY'], SYNTAX);

    const info = await cli(resp.port, ['COMMAND', 'INFO', 'get', 'nosuch', 'config|get']);
    expect(info).toContain(
      '1)  1) "get"\n    2) (integer) 2\n    3) 1) readonly\n       2) fast\n    4) (integer) 1\n    5) (integer) 1\n    6) (integer) 1\n',
    );
    expect(info).toContain('2) (nil)\n');
    expect(info).toContain('3)  1) "config|get"\n    2) (integer) -3\n');
    expect(await cli(resp.port, ['COMMAND'])).toMatch(/"mset"\n +2\) \(integer\) -3\n/);

    await expectCli(
      ['COMMAND', 'DOCS', 'get', 'nosuch'],
      '1) "get"',
      '2) 1) "summary"',
      '   2) "Get the value of a key"',
      '   3) "since"',
      '   4) "1.0.0"',
      '   5) "group"',
      '   6) "string"',
      '   7) "complexity"',
      '   8) "O(1)"',
    );
    const help = await cli(resp.port, ['COMMAND', 'HELP']);
    expect(help).toMatch(/^ 1\) COMMAND <subcommand> \[<arg> \[value\] \[opt\] \.\.\.\]\. Subcommands are:\n/);
    expect(help).toContain(') HELP\n');

    await expectCli(['COMMAND', 'COUNT', 'x'], arity('command|count'));
    await expectCli(['COMMAND', 'NOSUCH'], "(error) ERR unknown subcommand 'NOSUCH'. Try COMMAND HELP.");
  });

  it('CONFIG GET (what redis-benchmark and tools ask), CONFIG HELP', async () => {
    await expectCli(['CONFIG', 'GET', 'save'], '1) "save"', '2) ""');
    await expectCli(['CONFIG', 'GET', 'appendonly'], '1) "appendonly"', '2) "no"');
    await expectCli(['CONFIG', 'GET', 'maxmemory'], '1) "maxmemory"', `2) "${24 * 1024 * 1024}"`);
    await expectCli(
      ['CONFIG', 'GET', 'MAXMEMORY*'],
      '1) "maxmemory"',
      `2) "${24 * 1024 * 1024}"`,
      '3) "maxmemory-policy"',
      '4) "noeviction"',
      '5) "maxmemory-clients"',
      `6) "${2 * 8 * 1024 * 1024 + 64 * 1024}"`,
    );
    await expectCli(['CONFIG', 'GET', 'save', 'appendonly', 'sa?e'], '1) "save"', '2) ""', '3) "appendonly"', '4) "no"');
    await expectCli(['CONFIG', 'GET', 'nosuch'], '(empty array)');
    const all = await cli(resp.port, ['CONFIG', 'GET', '*']);
    expect(all).toContain('"hz"\n');
    expect(all).toContain('"proto-max-bulk-len"\n');
    expect(await cli(resp.port, ['CONFIG', 'HELP'])).toContain('GET <pattern>\n');
    await expectCli(['CONFIG'], arity('config'));
    await expectCli(['CONFIG', 'GET'], arity('config|get'));
    await expectCli(['CONFIG', 'SET', 'maxmemory', '1'], "(error) ERR unknown subcommand 'SET'. Try CONFIG HELP.");
  });

  it('INFO', async () => {
    await expectCli(['SET', 'a', '1', 'EX', '100'], 'OK');
    const all = await cli(resp.port, ['INFO']);
    for (const s of ['# Server', '# Clients', '# Memory', '# Stats', '# Keyspace']) expect(all).toContain(s);
    expect(all).toMatch(/used_memory:\d+/);
    expect(all).toContain('db0:keys=1,expires=1,avg_ttl=0');
    const keyspace = await cli(resp.port, ['INFO', 'keyspace']);
    expect(keyspace.replaceAll('\r', '').trim()).toBe('# Keyspace\ndb0:keys=1,expires=1,avg_ttl=0');
    expect(await cli(resp.port, ['INFO', 'nosuch'])).toBe(''); // redis-cli prints INFO's text as it is: here, nothing
  });

  it('QUIT', async () => {
    await expectCli(['QUIT'], 'OK');
  });

  it('unknown commands', async () => {
    await expectCli(['FOO', 'a', 'b c'], "(error) ERR unknown command 'FOO', with args beginning with: 'a' 'b c' ");
    await expectCli(['lpush'], "(error) ERR unknown command 'lpush', with args beginning with: ");
    // The list of arguments stops at 128 bytes, cutting the last one, as in Redis.
    const long = Array.from({ length: 40 }, (_, i) => `arg${i}`);
    const out = await cli(resp.port, ['NOPE', ...long]);
    expect(out).toBe(
      `(error) ERR unknown command 'NOPE', with args beginning with: ${long
        .slice(0, 17)
        .map((a) => `'${a}' `)
        .join('')}'ar' \n`,
    );
  });
});
