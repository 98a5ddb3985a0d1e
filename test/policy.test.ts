// Policies: parsing and validation (defaults, unknown keys, numbers, listen
// addresses, connect rules with CIDR prefixes and port ranges, IPv6), the
// layering of a file then flags, the outbound rule matcher on its edges, the
// memory cap rewritten into the real echo core module, and the CLI's
// refusals (exit 2 with WASMUX_ERR_BAD_POLICY).
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POLICY_DEFAULTS, SocketAddress, buildPolicy, describePolicy, readComponent, serve, type PolicyInput } from '../dist/host/index.js';
import { parseConnectRule, ruleAllows } from '../dist/host/sandbox/policy.js';
import { capModule } from '../dist/host/sandbox/module-limits.js';

const capMemory = (core: Uint8Array, maxMemoryBytes: number) => capModule(core, { maxMemoryBytes, maxTableElements: 65_536 });
import { wasmux, startRun } from './helpers/cli.js';

const KNOWN =
  'known: listen, connect, proxyProtocol, maxConnections, maxMemoryMiB, maxTableElements, maxHeapMiB, cpuBudgetMs, maxSendQueueBytes, handoverStateBytes, metricSeries, idleTimeoutMs, proxyHeaderTimeoutMs, maxEventsPerWait';

/** The WasmuxError `fn` throws, as { code, message }. */
function thrown(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (e) {
    return { code: (e as { code?: string }).code, message: (e as Error).message };
  }
  throw new Error('did not throw');
}

function policyError(input: unknown, where = 'policy p.json') {
  return thrown(() => buildPolicy([{ where, input: input as PolicyInput }]));
}

const addr = (text: string) => {
  const a = SocketAddress.parse(text);
  if (!a) throw new Error(`bad test address ${text}`);
  return a;
};

describe('policy: defaults', () => {
  it('are safe for a plugin nobody has reviewed', () => {
    expect(POLICY_DEFAULTS).toEqual({
      maxConnections: 16384,
      maxMemoryMiB: 64,
      maxTableElements: 65536,
      maxHeapMiB: 64,
      cpuBudgetMs: 200,
      maxSendQueueBytes: 262144,
      handoverStateBytes: 65536,
      metricSeries: 256,
      idleTimeoutMs: 60000,
      proxyHeaderTimeoutMs: 3000,
      maxEventsPerWait: 1024,
    });
    for (const p of [buildPolicy([]), buildPolicy([{ where: 'policy p.json', input: {} }])]) {
      expect(describePolicy(p)).toEqual({
        listen: [],
        connect: [],
        proxyProtocol: false,
        maxConnections: 16384,
        maxMemoryMiB: 64,
        maxTableElements: 65536,
        maxHeapMiB: 64,
        cpuBudgetMs: 200,
        maxSendQueueBytes: 262144,
        handoverStateBytes: 65536,
        metricSeries: 256,
        idleTimeoutMs: 60000,
        proxyHeaderTimeoutMs: 3000,
        maxEventsPerWait: 1024,
      });
      expect(p.maxMemoryMiB).toBe(64);
    }
  });
});

describe('policy: validation, with exact WASMUX_ERR_BAD_POLICY messages', () => {
  it('refuses what is not a JSON object', () => {
    for (const input of [null, [], 'maxConnections', 5]) {
      expect(policyError(input)).toEqual({ code: 'WASMUX_ERR_BAD_POLICY', message: 'policy p.json: a policy is a JSON object' });
    }
  });

  it('refuses unknown keys, including names Object.prototype has', () => {
    for (const key of ['maxConection', 'max_connections', 'MaxConnections', 'constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(policyError(JSON.parse(`{"${key}": 5}`))).toEqual({
        code: 'WASMUX_ERR_BAD_POLICY',
        message: `policy p.json: unknown key "${key}" (${KNOWN})`,
      });
    }
  });

  it('refuses numbers out of range, fractional or of the wrong type, naming the key and its range', () => {
    const cases: [key: string, range: string, values: unknown[]][] = [
      ['maxConnections', '1 to 65536', [0, -1, 65537, 1.5, '5', null, true]],
      ['maxMemoryMiB', '1 to 4096', [0, 4097, 0.5, '64']],
      ['maxTableElements', '1 to 1000000', [0, 1000001, 2.5, '65536']],
      ['maxHeapMiB', '8 to 4096', [7, 4097, 16.5, '64']],
      ['cpuBudgetMs', '10 to 600000', [9, 600001, 100.5, []]],
      ['maxSendQueueBytes', '4096 to 67108864', [4095, 67108865, {}]],
      ['idleTimeoutMs', '0 to 86400000', [-1, 86400001, 1e-3]],
      ['maxEventsPerWait', '1 to 1024', [0, 1025, 'all']],
      ['proxyHeaderTimeoutMs', '10 to 600000', [9, 600001, 2.5, '3000']],
    ];
    for (const [key, range, values] of cases) {
      for (const v of values) {
        expect(policyError({ [key]: v })).toEqual({
          code: 'WASMUX_ERR_BAD_POLICY',
          message: `policy p.json: ${key} must be a whole number from ${range} (got ${JSON.stringify(v)})`,
        });
      }
    }
    // The edges themselves are allowed.
    const lo = buildPolicy([
      {
        where: 'p',
        input: { maxConnections: 1, maxMemoryMiB: 1, cpuBudgetMs: 10, maxSendQueueBytes: 4096, idleTimeoutMs: 0, maxEventsPerWait: 1 },
      },
    ]);
    expect(describePolicy(lo)).toMatchObject({
      maxConnections: 1,
      maxMemoryMiB: 1,
      cpuBudgetMs: 10,
      maxSendQueueBytes: 4096,
      handoverStateBytes: 65536,
      metricSeries: 256,
      idleTimeoutMs: 0,
      proxyHeaderTimeoutMs: 3000,
      maxEventsPerWait: 1,
    });
    const hi = buildPolicy([
      {
        where: 'p',
        input: {
          maxConnections: 65536,
          maxMemoryMiB: 4096,
          cpuBudgetMs: 600000,
          maxSendQueueBytes: 67108864,
          handoverStateBytes: 65536,
          metricSeries: 256,
          idleTimeoutMs: 86400000,
          proxyHeaderTimeoutMs: 3000,
          maxEventsPerWait: 1024,
        },
      },
    ]);
    expect(hi.maxMemoryMiB).toBe(4096);
  });

  it('takes proxyProtocol as true or false only', () => {
    for (const v of [1, 'true', null, [], {}]) {
      expect(policyError({ proxyProtocol: v })).toEqual({
        code: 'WASMUX_ERR_BAD_POLICY',
        message: `policy p.json: proxyProtocol must be true or false (got ${JSON.stringify(v)})`,
      });
    }
    expect(buildPolicy([{ where: 'p', input: { proxyProtocol: true } }]).proxyProtocol).toBe(true);
    expect(describePolicy(buildPolicy([{ where: 'p', input: { proxyProtocol: true } }])).proxyProtocol).toBe(true);
    // A later layer that says nothing leaves it as the file set it.
    expect(
      buildPolicy([
        { where: 'f', input: { proxyProtocol: true } },
        { where: 'flags', input: {} },
      ]).proxyProtocol,
    ).toBe(true);
  });

  it('refuses listen lists that are not lists of host:port', () => {
    expect(policyError({ listen: '127.0.0.1:7000' }).message).toBe('policy p.json: listen must be a list of "host:port" strings');
    expect(policyError({ listen: ['127.0.0.1'] }).message).toBe('policy p.json: listen address "127.0.0.1" is not host:port');
    expect(policyError({ listen: ['127.0.0.1:65536'] }).message).toBe('policy p.json: listen address "127.0.0.1:65536" is not host:port');
    expect(policyError({ listen: ['::1:7000'] }).message).toBe('policy p.json: listen address "::1:7000" is not host:port');
    expect(policyError({ listen: [7000] }).message).toBe('policy p.json: listen address 7000 is not host:port');
    expect(buildPolicy([{ where: 'p', input: { listen: ['[::1]:7000', '127.0.0.1:0'] } }]).listen.map(String)).toEqual([
      '[::1]:7000',
      '127.0.0.1:0',
    ]);
  });

  it('refuses connect lists that are not lists of rule strings', () => {
    expect(policyError({ connect: '10.0.0.1:80' }).message).toBe(
      'policy p.json: connect must be a list of rules like "127.0.0.1:6379" or "10.0.0.0/8:80-443"',
    );
    expect(policyError({ connect: [80] }).message).toBe('policy p.json: connect rules are strings');
  });

  it('refuses bad connect rules: addresses, CIDR prefixes, ports, IPv6 forms', () => {
    const cases: [rule: string, message: string][] = [
      ['10.0.0.1', '"10.0.0.1" has no port (write host:port, host:min-max or host:*)'],
      ['nonsense', '"nonsense" has no port (write host:port, host:min-max or host:*)'],
      ['300.0.0.1:80', '"300.0.0.1" in "300.0.0.1:80" is not an IP address'],
      ['10.0.0:80', '"10.0.0" in "10.0.0:80" is not an IP address'],
      ['example.com:80', '"example.com" in "example.com:80" is not an IP address'],
      ['::1:80', '"::1" in "::1:80" is not an IP address'],
      ['10.0.0.0/33:80', 'prefix in "10.0.0.0/33:80" must be 0..32'],
      ['10.0.0.0/-1:80', 'prefix in "10.0.0.0/-1:80" must be 0..32'],
      // An empty or odd prefix must not read as /0 (every address).
      ['10.0.0.0/:80', 'prefix in "10.0.0.0/:80" must be 0..32'],
      ['10.0.0.0/ 8:80', 'prefix in "10.0.0.0/ 8:80" must be 0..32'],
      ['10.0.0.0/0x8:80', 'prefix in "10.0.0.0/0x8:80" must be 0..32'],
      ['10.0.0.0/8.0:80', 'prefix in "10.0.0.0/8.0:80" must be 0..32'],
      ['10.0.0.0/8/8:80', 'prefix in "10.0.0.0/8/8:80" must be 0..32'],
      ['10.0.0.1:0', 'port range in "10.0.0.1:0" must lie in 1..65535, low to high'],
      ['10.0.0.1:65536', 'port range in "10.0.0.1:65536" must lie in 1..65535, low to high'],
      ['10.0.0.1:90-80', 'port range in "10.0.0.1:90-80" must lie in 1..65535, low to high'],
      ['10.0.0.1:0-80', 'port range in "10.0.0.1:0-80" must lie in 1..65535, low to high'],
      ['10.0.0.1:80-', 'ports in "10.0.0.1:80-" must be a port, a range like 8000-8080, or *'],
      ['10.0.0.1:http', 'ports in "10.0.0.1:http" must be a port, a range like 8000-8080, or *'],
      ['10.0.0.1:', 'ports in "10.0.0.1:" must be a port, a range like 8000-8080, or *'],
      ['10.0.0.1:123456', 'ports in "10.0.0.1:123456" must be a port, a range like 8000-8080, or *'],
      ['[::1]', '"[::1]" is not [address/prefix]:ports'],
      ['[::1]80', '"[::1]80" is not [address/prefix]:ports'],
      ['[::1/]:80', 'prefix in "[::1/]:80" must be 0..128'],
      ['[fd00::/129]:80', 'prefix in "[fd00::/129]:80" must be 0..128'],
      ['[fd00:::1]:80', '"fd00:::1" in "[fd00:::1]:80" is not an IP address'],
      ['[10.0.0.1]:80', '"10.0.0.1" in "[10.0.0.1]:80" is not an IP address'],
      ['[::1]:0', 'port range in "[::1]:0" must lie in 1..65535, low to high'],
    ];
    for (const [rule, message] of cases) {
      expect(policyError({ connect: [rule] }), rule).toEqual({ code: 'WASMUX_ERR_BAD_POLICY', message: `policy p.json: ${message}` });
    }
  });

  it('accepts the documented rule forms', () => {
    const rules: [text: string, v6: boolean, prefix: number, min: number, max: number][] = [
      ['127.0.0.1:6379', false, 32, 6379, 6379],
      ['10.0.0.0/8:80-443', false, 8, 80, 443],
      ['0.0.0.0/0:*', false, 0, 1, 65535],
      ['192.168.1.4/31:1-65535', false, 31, 1, 65535],
      ['[::1]:6379', true, 128, 6379, 6379],
      ['[fd00::/8]:1-65535', true, 8, 1, 65535],
      ['[2001:db8::/32]:*', true, 32, 1, 65535],
      ['[::/0]:443', true, 0, 443, 443],
    ];
    for (const [text, v6, prefix, portMin, portMax] of rules) {
      expect(parseConnectRule(text), text).toMatchObject({ text, v6, prefix, portMin, portMax });
    }
  });
});

describe('policy: ruleAllows on CIDR and port edges', () => {
  const allows = (rule: string, a: string) => ruleAllows(parseConnectRule(rule), addr(a));

  it('IPv4', () => {
    expect(allows('10.0.0.0/8:80', '10.0.0.0:80')).toBe(true);
    expect(allows('10.0.0.0/8:80', '10.255.255.255:80')).toBe(true);
    expect(allows('10.0.0.0/8:80', '9.255.255.255:80')).toBe(false);
    expect(allows('10.0.0.0/8:80', '11.0.0.0:80')).toBe(false);
    expect(allows('10.0.0.0/8:80', '10.1.2.3:79')).toBe(false);
    expect(allows('10.0.0.0/8:80', '10.1.2.3:81')).toBe(false);
    // A prefix inside a byte.
    expect(allows('172.16.0.0/12:*', '172.16.0.0:1')).toBe(true);
    expect(allows('172.16.0.0/12:*', '172.31.255.255:65535')).toBe(true);
    expect(allows('172.16.0.0/12:*', '172.15.255.255:1')).toBe(false);
    expect(allows('172.16.0.0/12:*', '172.32.0.0:1')).toBe(false);
    // /31 and a port range: both ends in, one past each out.
    for (const a of ['192.168.1.4:1000', '192.168.1.5:1001']) expect(allows('192.168.1.4/31:1000-1001', a)).toBe(true);
    for (const a of ['192.168.1.3:1000', '192.168.1.6:1000', '192.168.1.4:999', '192.168.1.5:1002']) {
      expect(allows('192.168.1.4/31:1000-1001', a), a).toBe(false);
    }
    // /32: one address. Host bits set under a shorter prefix are ignored.
    expect(allows('127.0.0.1:6379', '127.0.0.1:6379')).toBe(true);
    expect(allows('127.0.0.1:6379', '127.0.0.2:6379')).toBe(false);
    expect(allows('10.1.2.3/8:80', '10.200.0.1:80')).toBe(true);
    // /0: every IPv4 address, and no IPv6 one.
    expect(allows('0.0.0.0/0:*', '255.255.255.255:1')).toBe(true);
    expect(allows('0.0.0.0/0:*', '[::1]:1')).toBe(false);
  });

  it('an IPv4-mapped IPv6 address is matched as the IPv4 host it names', () => {
    // ::ffff:7f00:1 is 127.0.0.1: IPv4 rules decide, IPv6 rules never match it.
    expect(allows('127.0.0.1:1', '[::ffff:7f00:1]:1')).toBe(true);
    expect(allows('0.0.0.0/0:*', '[::ffff:7f00:1]:1')).toBe(true);
    expect(allows('10.0.0.0/8:*', '[::ffff:7f00:1]:1')).toBe(false);
    expect(allows('[::/0]:*', '[::ffff:7f00:1]:1')).toBe(false);
    expect(allows('[::ffff:0:0/96]:*', '[::ffff:7f00:1]:1')).toBe(false);
  });

  it('IPv6', () => {
    expect(allows('[2001:db8::/32]:443', '[2001:db8::]:443')).toBe(true);
    expect(allows('[2001:db8::/32]:443', '[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:443')).toBe(true);
    expect(allows('[2001:db8::/32]:443', '[2001:db9::]:443')).toBe(false);
    expect(allows('[2001:db8::/32]:443', '[2001:db7:ffff:ffff:ffff:ffff:ffff:ffff]:443')).toBe(false);
    expect(allows('[2001:db8::/32]:443', '[2001:db8::1]:444')).toBe(false);
    // A prefix inside a 16-bit group.
    expect(allows('[fe80::/10]:*', '[fe80::]:1')).toBe(true);
    expect(allows('[fe80::/10]:*', '[febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1')).toBe(true);
    expect(allows('[fe80::/10]:*', '[fec0::]:1')).toBe(false);
    expect(allows('[fe80::/10]:*', '[fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1')).toBe(false);
    // /127 and /128 at the last bit.
    expect(allows('[::2/127]:1', '[::2]:1')).toBe(true);
    expect(allows('[::2/127]:1', '[::3]:1')).toBe(true);
    expect(allows('[::2/127]:1', '[::4]:1')).toBe(false);
    expect(allows('[::2/127]:1', '[::1]:1')).toBe(false);
    expect(allows('[::1]:6379', '[::1]:6379')).toBe(true);
    expect(allows('[::1]:6379', '[::]:6379')).toBe(false);
    expect(allows('[::1]:6379', '[::1:0]:6379')).toBe(false);
    // /0: every IPv6 address, and no IPv4 one.
    expect(allows('[::/0]:*', '[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:1')).toBe(true);
    expect(allows('[::/0]:*', '127.0.0.1:1')).toBe(false);
    // An IPv4 rule does not allow the same host over IPv6 (nor the reverse).
    expect(allows('127.0.0.1:80', '[::1]:80')).toBe(false);
    expect(allows('[::1]:80', '127.0.0.1:80')).toBe(false);
  });
});

describe('policy: layering', () => {
  it('applies the file, then the flags: a later value wins, connect rules add up, listen is replaced', () => {
    const p = buildPolicy([
      {
        where: 'policy f.json',
        input: { maxConnections: 10, cpuBudgetMs: 50, idleTimeoutMs: 0, connect: ['10.0.0.1:80'], listen: ['127.0.0.1:7000'] },
      },
      { where: 'command line', input: { maxConnections: 20, connect: ['[::1]:6379'] } },
    ]);
    expect(describePolicy(p)).toEqual({
      listen: ['127.0.0.1:7000'],
      connect: ['10.0.0.1:80', '[::1]:6379'],
      proxyProtocol: false,
      maxConnections: 20,
      maxMemoryMiB: 64,
      maxTableElements: 65536,
      maxHeapMiB: 64,
      cpuBudgetMs: 50,
      maxSendQueueBytes: 262144,
      handoverStateBytes: 65536,
      metricSeries: 256,
      idleTimeoutMs: 0,
      proxyHeaderTimeoutMs: 3000,
      maxEventsPerWait: 1024,
    });
    const q = buildPolicy([
      { where: 'a', input: { listen: ['127.0.0.1:7000'] } },
      { where: 'b', input: { listen: ['127.0.0.1:7001'] } },
    ]);
    expect(q.listen.map(String)).toEqual(['127.0.0.1:7001']);
  });

  it('names the layer an error comes from', () => {
    const file = { where: 'policy f.json', input: { maxConnections: 10 } };
    expect(thrown(() => buildPolicy([file, { where: 'command line', input: { cpuBudgetMs: 5 } }])).message).toBe(
      'command line: cpuBudgetMs must be a whole number from 10 to 600000 (got 5)',
    );
    expect(
      thrown(() =>
        buildPolicy([
          { where: 'policy f.json', input: { cpuBudgetMs: 5 } },
          { where: 'command line', input: { cpuBudgetMs: 50 } },
        ]),
      ).message,
    ).toBe('policy f.json: cpuBudgetMs must be a whole number from 10 to 600000 (got 5)');
  });

  it('serve() takes a policy or layers, adds its listen addresses, and refuses a bad policy before starting anything', async () => {
    const server = await serve({
      plugin: 'dist/plugins/echo.wasm',
      listen: ['127.0.0.1:0'],
      policy: [
        { where: 'policy f.json', input: { maxConnections: 7, connect: ['10.0.0.1:80'] } },
        { where: 'flags', input: { cpuBudgetMs: 30 } },
      ],
      logger: () => {},
    });
    try {
      await server.ready;
      expect(describePolicy(server.policy)).toMatchObject({
        listen: ['127.0.0.1:0'],
        connect: ['10.0.0.1:80'],
        proxyProtocol: false,
        maxConnections: 7,
        cpuBudgetMs: 30,
      });
    } finally {
      await server.stop();
    }
    await expect(
      serve({ plugin: 'dist/plugins/echo.wasm', listen: ['127.0.0.1:0'], policy: { maxConnections: 0 }, logger: () => {} }),
    ).rejects.toMatchObject({
      code: 'WASMUX_ERR_BAD_POLICY',
      message: 'policy: maxConnections must be a whole number from 1 to 65536 (got 0)',
    });
  });
});

// ---- the memory cap, in the module -------------------------------------------------------

function leb(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  for (let shift = 0; ; shift += 7) {
    const x = b[at++]!;
    v += (x & 0x7f) * 2 ** shift;
    if ((x & 0x80) === 0) return [v, at];
  }
}

/** The limits of a core module's memory section, read independently of the host's code. */
function memoryLimits(core: Uint8Array): { min: number; max: number | null } {
  for (let at = 8; at < core.length; ) {
    const id = core[at]!;
    const [size, body] = leb(core, at + 1);
    if (id === 5) {
      const flags = core[body + 1]!;
      const [min, next] = leb(core, body + 2);
      return { min, max: flags & 1 ? leb(core, next)[0] : null };
    }
    at = body + size;
  }
  throw new Error('no memory section');
}

/** A core module with one memory (min, max?) exported as "m". */
function moduleWithMemory(min: number, max?: number, flags = max === undefined ? 0 : 1): Uint8Array {
  const limits = max === undefined ? [flags, min] : [flags, min, max];
  return new Uint8Array([
    0,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    5,
    1 + limits.length,
    1,
    ...limits, // memory section
    7,
    5,
    1,
    1,
    0x6d,
    2,
    0, // export "m" = memory 0
  ]);
}

/** Instantiates a core module with a do-nothing function for every import. */
function instantiate(core: Uint8Array): WebAssembly.Memory {
  const module = new WebAssembly.Module(core as Uint8Array<ArrayBuffer>);
  const imports: Record<string, Record<string, unknown>> = {};
  for (const i of WebAssembly.Module.imports(module)) (imports[i.module] ??= {})[i.name] = () => 0;
  const inst = new WebAssembly.Instance(module, imports as WebAssembly.Imports);
  return (inst.exports.memory ?? inst.exports.m) as WebAssembly.Memory;
}

describe('policy: the memory cap rewritten into the module', () => {
  const echoCore = readComponent(readFileSync('dist/plugins/echo.wasm')).mainModule.bytes;

  it('sets the maximum of the real echo core module, which then cannot grow past it', () => {
    const before = memoryLimits(echoCore);
    expect(before.max).toBeNull(); // AssemblyScript declares no maximum
    const copy = echoCore.slice();
    const capped = capMemory(echoCore, 16 * 1048576);
    expect(echoCore).toEqual(copy); // the original is left alone
    expect(memoryLimits(capped)).toEqual({ min: before.min, max: 256 });
    // Everything else is byte for byte the same: only the memory section changed.
    expect(capped.length - echoCore.length).toBe(2); // the maximum, 256, is a 2-byte LEB128
    expect(WebAssembly.validate(capped as Uint8Array<ArrayBuffer>)).toBe(true);

    const mem = instantiate(capped);
    expect(mem.buffer.byteLength).toBe(before.min * 65536);
    expect(mem.grow(256 - before.min)).toBe(before.min); // up to the cap: fine
    expect(() => mem.grow(1)).toThrow(RangeError); // one page more: refused
  });

  it('rounds a cap down to whole pages, keeps a smaller maximum, and refuses a cap below the initial memory', () => {
    expect(memoryLimits(capMemory(echoCore, 1048576 + 65535)).max).toBe(16);
    expect(memoryLimits(capMemory(moduleWithMemory(2, 4), 1048576))).toEqual({ min: 2, max: 4 });
    expect(memoryLimits(capMemory(moduleWithMemory(2), 1048576))).toEqual({ min: 2, max: 16 });
    expect(memoryLimits(capMemory(moduleWithMemory(16), 1048576))).toEqual({ min: 16, max: 16 });
    expect(thrown(() => capMemory(moduleWithMemory(32, 64), 1048576))).toEqual({
      code: 'WASMUX_ERR_POLICY',
      message: 'the plugin needs 2 MiB of memory at start; its policy allows 1 MiB',
    });
    expect(thrown(() => capMemory(echoCore, 0))).toEqual({
      code: 'WASMUX_ERR_POLICY',
      message: 'the plugin needs 0.0625 MiB of memory at start; its policy allows 0 MiB',
    });
    expect(thrown(() => capMemory(moduleWithMemory(1, 2, 3), 1048576))).toEqual({
      code: 'WASMUX_ERR_UNSUPPORTED_SHAPE',
      message: "the core module's memory is shared or 64-bit (limits flags 3)",
    });
  });
});

// ---- the command line ---------------------------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), 'wasmux-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('policy: wasmux run', () => {
  const run = (...args: string[]) => wasmux(['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', ...args], 15_000);

  it('exits 2 with WASMUX_ERR_BAD_POLICY for a bad --policy file, naming the file', async () => {
    const cases: [name: string, text: string, message: (path: string) => string][] = [
      ['unknown.json', '{"maxConection": 5}', (p) => `policy ${p}: unknown key "maxConection" (${KNOWN})`],
      ['number.json', '{"maxConnections": 0}', (p) => `policy ${p}: maxConnections must be a whole number from 1 to 65536 (got 0)`],
      ['cidr.json', '{"connect": ["10.0.0.0/33:80"]}', (p) => `policy ${p}: prefix in "10.0.0.0/33:80" must be 0..32`],
      ['array.json', '[]', (p) => `policy ${p}: a policy is a JSON object`],
    ];
    for (const [name, text, message] of cases) {
      const path = file(name, text);
      const r = await run('--policy', path);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe(`wasmux: error WASMUX_ERR_BAD_POLICY: ${message(path)}\n`);
      expect(r.stdout).toBe('');
    }
    const broken = file('broken.json', '{"maxConnections": ');
    const r = await run('--policy', broken);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^wasmux: error WASMUX_ERR_BAD_POLICY: policy ${broken} is not valid JSON: `));
  }, 30_000);

  it('exits 2 with WASMUX_ERR_BAD_POLICY for a bad policy flag', async () => {
    const cases: [args: string[], message: string][] = [
      [['--allow-connect', 'nonsense'], 'command line: "nonsense" has no port (write host:port, host:min-max or host:*)'],
      [['--allow-connect', '10.0.0.0/:80'], 'command line: prefix in "10.0.0.0/:80" must be 0..32'],
      [['--allow-connect', '[::1]:99999'], 'command line: port range in "[::1]:99999" must lie in 1..65535, low to high'],
      [['--max-connections', '0'], 'command line: maxConnections must be a whole number from 1 to 65536 (got 0)'],
      [['--cpu-budget', '5'], 'command line: cpuBudgetMs must be a whole number from 10 to 600000 (got 5)'],
    ];
    for (const [args, message] of cases) {
      const r = await run(...args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toBe(`wasmux: error WASMUX_ERR_BAD_POLICY: ${message}\n`);
    }
    // Not a number at all is an argument error, not a policy one.
    const r = await run('--max-connections', 'many');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('wasmux: error WASMUX_ERR_BAD_ARGUMENT: --max-connections must be a whole number (got "many")\n');
  }, 30_000);

  it('layers the file, then the flags (the policy it runs under, at --log-level debug)', async () => {
    const path = file('good.json', JSON.stringify({ maxConnections: 10, cpuBudgetMs: 50, idleTimeoutMs: 0, connect: ['10.0.0.1:80'] }));
    const r = await startRun([
      'dist/plugins/echo.wasm',
      '--listen',
      '127.0.0.1:0',
      '--policy',
      path,
      '--max-connections',
      '20',
      '--allow-connect',
      '[::1]:6379',
      '--log-level',
      'debug',
    ]);
    try {
      const line = /^echo debug: policy (\{.*\})$/m.exec(r.output().stderr);
      expect(line, r.output().stderr).not.toBeNull();
      expect(JSON.parse(line![1]!)).toEqual({
        listen: ['127.0.0.1:0'],
        connect: ['10.0.0.1:80', '[::1]:6379'],
        proxyProtocol: false,
        maxConnections: 20,
        maxMemoryMiB: 64,
        maxTableElements: 65536,
        maxHeapMiB: 64,
        cpuBudgetMs: 50,
        maxSendQueueBytes: 262144,
        handoverStateBytes: 65536,
        metricSeries: 256,
        idleTimeoutMs: 0,
        proxyHeaderTimeoutMs: 3000,
        maxEventsPerWait: 1024,
      });
    } finally {
      expect((await r.stop('SIGTERM')).code).toBe(0);
    }
  }, 30_000);
});
