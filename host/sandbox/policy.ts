/**
 * A plugin's policy: everything it may reach and every limit it runs under.
 * Built from a JSON file (`--policy`) and/or command-line flags, validated
 * once, with defaults that are safe for a plugin nobody has reviewed.
 */
import { WasmuxError } from '../errors.js';
import { SocketAddress } from '../backends/address.js';

/** One outbound rule: an address range and a port range. */
export interface ConnectRule {
  /** The rule as written, for log lines. */
  readonly text: string;
  readonly v6: boolean;
  /** Network address as 8 16-bit groups (IPv4 uses groups 0..3 as bytes). */
  readonly groups: Uint16Array;
  /** Prefix length in bits (32 or 128 for a single host). */
  readonly prefix: number;
  readonly portMin: number;
  readonly portMax: number;
}

export interface Policy {
  /** Addresses the plugin serves and may listen on; nothing else. */
  listen: SocketAddress[];
  /** Outbound connections allowed; empty = none (the default). */
  connect: ConnectRule[];
  /** Concurrent connections per instance (accepted + connected). */
  maxConnections: number;
  /** Linear memory cap per instance, bytes (a multiple of 64 KiB). */
  maxMemoryBytes: number;
  /** Elements of all the module's tables together, per instance (written into the module like the memory cap). */
  maxTableElements: number;
  /** The old generation of the instance's thread's V8 heap, MiB (Worker resourceLimits). */
  maxHeapMiB: number;
  /** CPU time the guest may run between two calls to poll.wait. */
  cpuBudgetMs: number;
  /** Kernel send buffer per connection: bytes a peer that does not read can make the host hold. */
  maxSendQueueBytes: number;
  /** A connection with no traffic in either direction for this long is shut down; 0 = never. */
  idleTimeoutMs: number;
  /** Events one poll.wait returns at most. */
  maxEventsPerWait: number;
}

export const POLICY_DEFAULTS = {
  maxConnections: 16_384,
  maxMemoryMiB: 64,
  maxTableElements: 65_536,
  maxHeapMiB: 64,
  cpuBudgetMs: 200,
  maxSendQueueBytes: 256 * 1024,
  idleTimeoutMs: 60_000,
  maxEventsPerWait: 1024,
} as const;

/** What a policy file may contain (all optional; unknown keys are an error). */
export interface PolicyInput {
  listen?: string[];
  connect?: string[];
  maxConnections?: number;
  maxMemoryMiB?: number;
  maxTableElements?: number;
  maxHeapMiB?: number;
  cpuBudgetMs?: number;
  maxSendQueueBytes?: number;
  idleTimeoutMs?: number;
  maxEventsPerWait?: number;
}

const LIMITS: Record<keyof Omit<PolicyInput, 'listen' | 'connect'>, [min: number, max: number]> = {
  maxConnections: [1, 65_536],
  maxMemoryMiB: [1, 4096],
  // 8 MiB of heap at most: a table allocation that overshoots the heap limit
  // by more than Node's 16 MiB leeway aborts the process, not the thread.
  maxTableElements: [1, 1_000_000],
  // Measured use under load is under 9 MiB; 8 is for tests of the limit itself.
  maxHeapMiB: [8, 4096],
  cpuBudgetMs: [10, 600_000],
  maxSendQueueBytes: [4096, 64 * 1024 * 1024],
  idleTimeoutMs: [0, 86_400_000],
  maxEventsPerWait: [1, 1024],
};

function bad(where: string, message: string): never {
  throw new WasmuxError('WASMUX_ERR_BAD_POLICY', `${where}: ${message}`);
}

/**
 * Parses a connect rule: `host[/prefix]:port` or `host[/prefix]:min-max`,
 * with IPv6 in brackets (`[::1]:6379`, `[fd00::/8]:1-65535`), `*` for any port.
 */
export function parseConnectRule(text: string, where = 'connect rule'): ConnectRule {
  let host: string;
  let ports: string;
  if (text.startsWith('[')) {
    const end = text.indexOf(']:');
    if (end < 0) bad(where, `"${text}" is not [address/prefix]:ports`);
    host = text.slice(1, end);
    ports = text.slice(end + 2);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) bad(where, `"${text}" has no port (write host:port, host:min-max or host:*)`);
    host = text.slice(0, colon);
    ports = text.slice(colon + 1);
  }
  const slash = host.indexOf('/');
  const addrText = slash < 0 ? host : host.slice(0, slash);
  const v6 = text.startsWith('[');
  const addr = SocketAddress.parse(v6 ? `[${addrText}]:0` : `${addrText}:0`);
  if (!addr) bad(where, `"${addrText}" in "${text}" is not an IP address`);
  const bits = v6 ? 128 : 32;
  // Digits only: Number() would read "" (a typo like "10.0.0.0/:80") as 0, allowing every address.
  const prefixText = host.slice(slash + 1);
  const prefix = slash < 0 ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) bad(where, `prefix in "${text}" must be 0..${bits}`);
  let portMin: number;
  let portMax: number;
  if (ports === '*') {
    portMin = 1;
    portMax = 65535;
  } else {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(ports);
    if (!m) bad(where, `ports in "${text}" must be a port, a range like 8000-8080, or *`);
    portMin = Number(m[1]);
    portMax = m[2] === undefined ? portMin : Number(m[2]);
    if (portMin < 1 || portMax > 65535 || portMin > portMax) bad(where, `port range in "${text}" must lie in 1..65535, low to high`);
  }
  return { text, v6, groups: addr.groups.slice(), prefix, portMin, portMax };
}

/**
 * Does `rule` allow a connection to `addr`? An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) is the IPv4 host it names: only IPv4 rules match it, so
 * an IPv6 rule such as [::/0]:* cannot be used to reach IPv4 hosts.
 */
export function ruleAllows(rule: ConnectRule, addr: SocketAddress): boolean {
  const g = addr.groups;
  if (addr.v6 && g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    const v4 = new SocketAddress();
    v4.groups.set([g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff]);
    v4.port = addr.port;
    return ruleAllows(rule, v4);
  }
  if (rule.v6 !== addr.v6 || addr.port < rule.portMin || addr.port > rule.portMax) return false;
  const groupBits = rule.v6 ? 16 : 8;
  let left = rule.prefix;
  for (let i = 0; left > 0; i++, left -= groupBits) {
    const take = Math.min(groupBits, left);
    const mask = ((1 << take) - 1) << (groupBits - take);
    if ((rule.groups[i]! & mask) !== (addr.groups[i]! & mask)) return false;
  }
  return true;
}

function integer(where: string, key: keyof typeof LIMITS, v: unknown): number {
  const [min, max] = LIMITS[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    bad(where, `${key} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)})`);
  }
  return v;
}

/** One source of policy values; `where` names it in error messages. */
export interface PolicyLayer {
  where: string;
  input: PolicyInput;
}

/**
 * Builds a policy: defaults, then each layer in order (a file, then flags):
 * a later layer's value wins; connect rules add up.
 */
export function buildPolicy(inputs: PolicyLayer[]): Policy {
  const p: Policy = {
    listen: [],
    connect: [],
    maxConnections: POLICY_DEFAULTS.maxConnections,
    maxMemoryBytes: POLICY_DEFAULTS.maxMemoryMiB * 1024 * 1024,
    maxTableElements: POLICY_DEFAULTS.maxTableElements,
    maxHeapMiB: POLICY_DEFAULTS.maxHeapMiB,
    cpuBudgetMs: POLICY_DEFAULTS.cpuBudgetMs,
    maxSendQueueBytes: POLICY_DEFAULTS.maxSendQueueBytes,
    idleTimeoutMs: POLICY_DEFAULTS.idleTimeoutMs,
    maxEventsPerWait: POLICY_DEFAULTS.maxEventsPerWait,
  };
  for (const { where, input } of inputs) {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) bad(where, 'a policy is a JSON object');
    for (const key of Object.keys(input)) {
      if (!Object.hasOwn(LIMITS, key) && key !== 'listen' && key !== 'connect') {
        bad(where, `unknown key "${key}" (known: listen, connect, ${Object.keys(LIMITS).join(', ')})`);
      }
    }
    if (input.listen !== undefined) {
      if (!Array.isArray(input.listen)) bad(where, 'listen must be a list of "host:port" strings');
      p.listen = input.listen.map((t) => {
        const a = typeof t === 'string' ? SocketAddress.parse(t) : null;
        if (!a) bad(where, `listen address ${JSON.stringify(t)} is not host:port`);
        return a;
      });
    }
    if (input.connect !== undefined) {
      if (!Array.isArray(input.connect)) bad(where, 'connect must be a list of rules like "127.0.0.1:6379" or "10.0.0.0/8:80-443"');
      p.connect = p.connect.concat(input.connect.map((t) => (typeof t === 'string' ? parseConnectRule(t, where) : bad(where, 'connect rules are strings'))));
    }
    if (input.maxConnections !== undefined) p.maxConnections = integer(where, 'maxConnections', input.maxConnections);
    if (input.maxMemoryMiB !== undefined) p.maxMemoryBytes = integer(where, 'maxMemoryMiB', input.maxMemoryMiB) * 1024 * 1024;
    if (input.maxTableElements !== undefined) p.maxTableElements = integer(where, 'maxTableElements', input.maxTableElements);
    if (input.maxHeapMiB !== undefined) p.maxHeapMiB = integer(where, 'maxHeapMiB', input.maxHeapMiB);
    if (input.cpuBudgetMs !== undefined) p.cpuBudgetMs = integer(where, 'cpuBudgetMs', input.cpuBudgetMs);
    if (input.maxSendQueueBytes !== undefined) p.maxSendQueueBytes = integer(where, 'maxSendQueueBytes', input.maxSendQueueBytes);
    if (input.idleTimeoutMs !== undefined) p.idleTimeoutMs = integer(where, 'idleTimeoutMs', input.idleTimeoutMs);
    if (input.maxEventsPerWait !== undefined) p.maxEventsPerWait = integer(where, 'maxEventsPerWait', input.maxEventsPerWait);
  }
  return p;
}

/** The policy as plain JSON (for logs, inspect, the API). */
export function describePolicy(p: Policy) {
  return {
    listen: p.listen.map(String),
    connect: p.connect.map((r) => r.text),
    maxConnections: p.maxConnections,
    maxMemoryMiB: p.maxMemoryBytes / (1024 * 1024),
    maxTableElements: p.maxTableElements,
    maxHeapMiB: p.maxHeapMiB,
    cpuBudgetMs: p.cpuBudgetMs,
    maxSendQueueBytes: p.maxSendQueueBytes,
    idleTimeoutMs: p.idleTimeoutMs,
    maxEventsPerWait: p.maxEventsPerWait,
  };
}
