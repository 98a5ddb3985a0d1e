// The SDK's Server (assembly/sdk/server.ts) end to end: the test plugin
// assembly/test-plugins/sdk-server (a line protocol whose PEEK and STATS
// commands show the Server's buffers and counters) served on 127.0.0.1:0,
// driven by real clients. Checked: incomplete messages (one byte at a time,
// pipelined with a partial tail, a large one past the read buffer's spare
// room) are kept in a buffer of the connection's own and given back when
// complete; output the peer does not take waits in order in the output
// buffer, reading pauses above the high-water mark and resumes when the
// output is sent; and the close paths: close() after queued output, drop()
// at once, the peer's end with an incomplete message, a peer that resets
// while output waits. onClose runs once per connection.
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import type net from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve, type LogEntry, type PluginServer } from '../../dist/host/index.js';
import { connect, destroyClients, problems, sleep, withTimeout, writeAll } from '../helpers/server.js';

const PLUGIN = fileURLToPath(new URL('../../dist/test-plugins/sdk-server.wasm', import.meta.url));
const HIGH_WATER = 64 * 1024; // the plugin's ServerOptions.outputHighWater

let server: PluginServer;
let port: number;
const logs: LogEntry[] = [];

beforeAll(async () => {
  server = await serve({ plugin: PLUGIN, listen: ['127.0.0.1:0'], logger: (e) => logs.push(e) });
  await withTimeout(server.ready, 15_000, 'sdk-server ready');
  port = server.addresses[0]!.port;
});

afterEach(() => {
  destroyClients();
});

afterAll(async () => {
  destroyClients();
  await server?.stop();
});

/** A client that reads the plugin's answers line by line. */
class Client {
  private text = '';
  private ended = false;
  private waiter: (() => void) | null = null;

  private constructor(readonly sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.text += d;
      this.waiter?.();
    });
    sock.on('end', () => {
      this.ended = true;
      this.waiter?.();
    });
    sock.on('close', () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  static async open(opts: { allowHalfOpen?: boolean } = {}): Promise<Client> {
    return new Client(await connect(port, opts));
  }

  send(text: string): void {
    this.sock.write(text);
  }

  /** Resolves when `cond` holds of what arrived (or the stream ended); rejects after `ms`. */
  private async until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
    await withTimeout(
      new Promise<void>((resolve) => {
        const check = () => {
          if (cond() || this.ended) {
            this.waiter = null;
            resolve();
          }
        };
        this.waiter = check;
        check();
      }),
      ms,
      `${what} (so far: ${JSON.stringify(this.text.slice(0, 200))})`,
    );
  }

  /** The next line (without "\n"). */
  async line(): Promise<string> {
    await this.until(() => this.text.includes('\n'), 'a line');
    const i = this.text.indexOf('\n');
    if (i < 0) throw new Error(`stream ended; left: ${JSON.stringify(this.text)}`);
    const l = this.text.slice(0, i);
    this.text = this.text.slice(i + 1);
    return l;
  }

  /** The next `n` bytes (as latin1 text). */
  async bytes(n: number, ms = 30_000): Promise<string> {
    await this.until(() => this.text.length >= n, `${n} bytes`, ms);
    if (this.text.length < n) throw new Error(`stream ended after ${this.text.length} of ${n} bytes`);
    const b = this.text.slice(0, n);
    this.text = this.text.slice(n);
    return b;
  }

  async ask(command: string): Promise<string> {
    this.send(`${command}\n`);
    return this.line();
  }

  /** Everything until the server ends the stream. */
  async rest(): Promise<string> {
    await this.until(() => false, 'the end of the stream');
    const all = this.text;
    this.text = '';
    return all;
  }

  async key(): Promise<number> {
    const m = /^key (\d+)$/.exec(await this.ask('KEY'));
    if (!m) throw new Error('no key');
    return Number(m[1]);
  }
}

interface Peek {
  input: number;
  cap: number;
  out: number;
  buf: number;
  watching: number;
  handled: number;
}

async function peek(observer: Client, key: number): Promise<Peek> {
  const l = await observer.ask(`PEEK ${key}`);
  const m = /^peek input (\d+) cap (\d+) out (\d+) buf (\d) watching (\d) handled (\d+)$/.exec(l);
  if (!m) throw new Error(`PEEK: ${l}`);
  const [input, cap, out, buf, watching, handled] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  return { input, cap, out, buf, watching, handled };
}

/** PEEKs until `cond` holds (bounded); the last answer. */
async function peekUntil(observer: Client, key: number, cond: (p: Peek) => boolean, what: string): Promise<Peek> {
  let last: Peek | null = null;
  const deadline = performance.now() + 10_000;
  for (;;) {
    last = await peek(observer, key);
    if (cond(last)) return last;
    if (performance.now() > deadline) throw new Error(`${what}: never; last ${JSON.stringify(last)}`);
    await sleep(10);
  }
}

async function stats(observer: Client): Promise<{ opened: number; closed: number; drained: number; open: number; afterClose: number }> {
  const m = /^stats opened (\d+) closed (\d+) drained (\d+) open (\d+) after-close (\d+)$/.exec(await observer.ask('STATS'));
  if (!m) throw new Error('STATS');
  return { opened: Number(m[1]), closed: Number(m[2]), drained: Number(m[3]), open: Number(m[4]), afterClose: Number(m[5]) };
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

const sumOf = (b: Buffer) => b.reduce((s, x) => (s + x) >>> 0, 0);

describe('the SDK Server: incomplete messages', () => {
  it('keeps a message that arrives a byte at a time in a buffer of its own (from the pool), and gives it back once complete', async () => {
    const a = await Client.open();
    const observer = await Client.open();
    const key = await a.key();
    expect(await peek(observer, key)).toMatchObject({ input: 0, cap: 0, out: 0, buf: 0 });
    a.sock.setNoDelay(true);
    for (const ch of 'ECHO hel') {
      a.send(ch);
      await sleep(2);
    }
    const held = await peekUntil(observer, key, (p) => p.input === 8, 'the 8 bytes held');
    // A buffer of its own from the pool (which keeps none above 16 KiB), not the instance's 96 KiB read buffer.
    expect(held.cap).toBeGreaterThanOrEqual(8);
    expect(held.cap).toBeLessThanOrEqual(16 * 1024);
    a.send('lo\n');
    expect(await a.line()).toBe('hello');
    expect(await peek(observer, key)).toMatchObject({ input: 0, cap: 0, buf: 0 });
  });

  it('handles pipelined messages in order and keeps the partial tail', async () => {
    const a = await Client.open();
    const observer = await Client.open();
    const key = await a.key();
    a.send('ECHO a\nECHO b\nECHO c\nECHO d');
    expect([await a.line(), await a.line(), await a.line()]).toEqual(['a', 'b', 'c']);
    await peekUntil(observer, key, (p) => p.input === 6 && p.handled === 4, 'the tail "ECHO d" held after KEY and three lines');
    a.send('\n');
    expect(await a.line()).toBe('d');
  });

  it('reads a 200 KB message past the read buffer into its own buffer, which grows with it, and is given back after', async () => {
    const a = await Client.open();
    const observer = await Client.open();
    const key = await a.key();
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = 33 + ((i * 13) % 90);
    await writeAll(a.sock, Buffer.concat([Buffer.from('DATA '), body]));
    const held = await peekUntil(observer, key, (p) => p.input === body.length + 5, 'the whole incomplete message held');
    expect(held.cap).toBeGreaterThanOrEqual(body.length + 5);
    expect(held.cap).toBeLessThanOrEqual(2 * 262_144);
    a.send('\n');
    expect(await a.line()).toBe(`data ${body.length} ${sumOf(body)}`);
    expect(await peek(observer, key)).toMatchObject({ input: 0, cap: 0 });
  });
});

describe('the SDK Server: output the peer does not take', () => {
  it('queues it in order, pauses reading above the high-water mark, and resumes once it is sent', async () => {
    const a = await Client.open();
    const observer = await Client.open();
    const key = await a.key();
    a.sock.pause(); // from here the client reads nothing: the kernel's buffers fill, then the server's output waits
    const n = 4 * 1024 * 1024;
    a.send(`BIG ${n}\n`);
    const stuck = await peekUntil(observer, key, (p) => p.out > HIGH_WATER, 'output waiting past the high-water mark');
    expect(stuck).toMatchObject({ buf: 1, watching: 1, handled: 2 });
    a.send('ECHO after\n');
    await sleep(300);
    // Not read while that much output waits: the ECHO is still in the kernel.
    expect(await peek(observer, key)).toMatchObject({ handled: 2, input: 0 });
    const before = await stats(observer);
    a.sock.resume();
    const got = await a.bytes(n + 1 + 'after\n'.length);
    expect(Buffer.from(got.slice(0, n), 'latin1').equals(pattern(n))).toBe(true);
    expect(got.slice(n)).toBe('\nafter\n');
    const done = await peek(observer, key);
    expect(done).toMatchObject({ out: 0, buf: 0, watching: 0, handled: 3 });
    expect((await stats(observer)).drained).toBeGreaterThan(before.drained);
  });
});

describe('the SDK Server: closing', () => {
  it('QUIT: what is queued is sent, then the connection closes; input after close() never reaches the handler', async () => {
    const observer = await Client.open();
    const a = await Client.open();
    a.sock.pause();
    const n = 1024 * 1024;
    a.send(`BIG ${n}\nQUIT\nECHO too late\n`);
    await sleep(200); // the server has queued what the paused client does not read
    // More input while the reply is stuck: read and thrown away by the Server.
    for (let i = 0; i < 20; i++) a.send(`ECHO later ${i}\n`);
    await sleep(100);
    a.sock.resume();
    const all = await a.rest();
    expect(all.length).toBe(n + 1 + 'bye\n'.length);
    expect(Buffer.from(all.slice(0, n), 'latin1').equals(pattern(n))).toBe(true);
    expect(all.slice(n)).toBe('\nbye\n');
    expect((await stats(observer)).afterClose, 'onData calls after close()').toBe(0);
  });

  it('DROP: closes at once; what was written before is not sent', async () => {
    const a = await Client.open();
    expect(await a.ask('ECHO first')).toBe('first');
    a.send('DROP\n');
    expect(await a.rest()).toBe('');
  });

  it('the peer ends its side with a message incomplete: onEnd sees it, the replies go out, then the connection closes', async () => {
    const a = await Client.open({ allowHalfOpen: true });
    a.send('ECHO x\npartial');
    a.sock.end();
    expect(await a.rest()).toBe('x\nend 7\n');
  });

  it('a peer that resets while output waits is dropped, and every connection is closed exactly once', async () => {
    const observer = await Client.open();
    const before = await stats(observer);
    const a = await connect(port, { paused: true });
    a.write(`BIG ${4 * 1024 * 1024}\n`);
    // The server has the connection, and its output is stuck (the client reads nothing).
    const stuck = await statsUntil(observer, (s) => s.opened === before.opened + 1, 'the connection opened');
    expect(stuck.closed).toBe(before.closed);
    await sleep(100);
    a.resetAndDestroy();
    // Every connection of this file has been closed once by now (the earlier tests' clients are gone); only the observer is open.
    const after = await statsUntil(observer, (s) => s.closed === s.opened - 1, 'every connection but the observer closed');
    expect(after).toMatchObject({ opened: before.opened + 1, open: 1 });
    expect(problems(logs)).toEqual([]);
    expect(server.exitReasons()).toEqual([null]);
  });
});

async function statsUntil(observer: Client, cond: (s: Awaited<ReturnType<typeof stats>>) => boolean, what: string) {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const s = await stats(observer);
    if (cond(s)) return s;
    if (performance.now() > deadline) throw new Error(`${what}: never; last ${JSON.stringify(s)}`);
    await sleep(10);
  }
}
