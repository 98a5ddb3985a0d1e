/**
 * A plugin's policy: everything it may reach and every limit it runs under.
 * Built from a JSON file (`--policy`) and/or command-line flags, validated
 * once, with defaults that are safe for a plugin nobody has reviewed. The
 * knobs are one table, POLICY_KNOBS.
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

/** One numeric knob of the policy: everything said about it, said once. */
export interface Knob {
  /** The command-line flag, without `--`. */
  readonly flag: string;
  /** The flag's argument as `--help` shows it. */
  readonly arg: string;
  readonly min: number;
  readonly max: number;
  readonly default: number;
  /** One line for `--help`. */
  readonly help: string;
  /** The README's fuller text (markdown). */
  readonly doc: string;
  /**
   * Who applies it: `instance` knobs travel to each instance's thread
   * (WorkerInput.limits, then the instance's host); `supervisor` knobs are
   * applied around the thread (the watchdog, Worker resourceLimits);
   * `module` knobs are written into the plugin's module before it is compiled.
   */
  readonly applies: 'instance' | 'supervisor' | 'module';
}

/**
 * Every numeric knob of a plugin's policy. Parsing, validation, defaults,
 * the CLI's flags and help, the limits handed to each instance and the
 * README's table (test/policy-knobs.test.ts) all come from here: a new knob
 * is one entry, plus the code that enforces it.
 */
export const POLICY_KNOBS = {
  maxConnections: {
    flag: 'max-connections',
    arg: '<n>',
    min: 1,
    max: 65_536,
    default: 16_384,
    applies: 'instance',
    help: 'open connections per instance; more are closed at accept',
    doc:
      'open connections per instance; more are accepted and closed at once. At start the host warns when the plugins of ' +
      'the process (workers × this) promise more descriptors than its open-file limit',
  },
  maxMemoryMiB: {
    flag: 'max-memory',
    arg: '<MiB>',
    min: 1,
    max: 4096,
    default: 64,
    applies: 'module',
    help: 'linear memory per instance (written into the module)',
    doc:
      "linear memory per instance, written into the module as its memory's maximum (`memory.grow` fails inside the guest); " +
      'the guest reads it with `limits.memory-limit`',
  },
  maxTableElements: {
    // 8 MiB of heap at most: a table allocation that overshoots the heap limit
    // by more than Node's 16 MiB leeway aborts the process, not the thread.
    flag: 'max-table-elements',
    arg: '<n>',
    min: 1,
    max: 1_000_000,
    default: 65_536,
    applies: 'module',
    help: 'elements of all tables per instance (written into the module)',
    doc:
      "elements of all the module's tables together, per instance (8 bytes each on the worker's heap); the first table " +
      'may grow into what the others do not take; at most 1,000,000 (8 MiB), so that the heap limit below always ends a ' +
      'table-filling thread alone',
  },
  maxHeapMiB: {
    // Measured use under load is under 9 MiB; 8 is for tests of the limit itself.
    flag: 'max-heap',
    arg: '<MiB>',
    min: 8,
    max: 4096,
    default: 64,
    applies: 'supervisor',
    help: "V8 heap of the instance's thread (tables live there)",
    doc: "the old generation of the instance thread's V8 heap (Worker `resourceLimits`; tables and the host's glue live there)",
  },
  cpuBudgetMs: {
    flag: 'cpu-budget',
    arg: '<ms>',
    min: 10,
    max: 600_000,
    default: 200,
    applies: 'supervisor',
    help: 'guest time allowed between two waits; over it the instance is killed and restarted',
    doc:
      "CPU time the guest may use between two `poll.wait` calls (its thread's CPU clock on Linux and Windows; wall-clock time " +
      'outside `wait` where the OS has no per-thread clock); over it the instance is killed and restarted',
  },
  maxSendQueueBytes: {
    flag: 'max-send-queue',
    arg: '<bytes>',
    min: 4096,
    max: 64 * 1024 * 1024,
    default: 256 * 1024,
    applies: 'instance',
    help: 'kernel send buffer per connection',
    doc: 'SO_SNDBUF of every connection: what a peer that never reads can make the host hold (wasmux keeps no send queue of its own)',
  },
  handoverStateBytes: {
    flag: 'handover-state-bytes',
    arg: '<bytes>',
    min: 0,
    max: 16 * 1024 * 1024,
    default: 64 * 1024,
    applies: 'instance',
    help: 'state a connection may carry to the new version on a reload',
    doc:
      'state blob per connection that `handover.give` may carry to the new version on a reload (wit/handover.wit); a ' +
      'larger one is refused with `limit` and counted as a failed handover',
  },
  metricSeries: {
    flag: 'metric-series',
    arg: '<n>',
    min: 0,
    max: 4096,
    default: 256,
    applies: 'instance',
    help: 'plugin-defined metric series per instance; 0 = none',
    doc:
      'series of plugin-defined metrics (wit/metrics.wit) per instance, a histogram counting once (and at most 64 ' +
      'metrics); a definition past it is refused with `limit` and logged once. Their values take 256 bytes of shared ' +
      'memory per series (0: no plugin metrics)',
  },
  idleTimeoutMs: {
    flag: 'idle-timeout',
    arg: '<ms>',
    min: 0,
    max: 86_400_000,
    default: 60_000,
    applies: 'instance',
    help: 'shut down connections idle this long; 0 = never',
    doc: 'a connection without traffic in either direction this long is shut down (0: never)',
  },
  proxyHeaderTimeoutMs: {
    flag: 'proxy-header-timeout',
    arg: '<ms>',
    min: 10,
    max: 600_000,
    default: 3000,
    applies: 'instance',
    help: 'with --proxy-protocol: time a new connection has to send its PROXY header',
    doc:
      'with `proxyProtocol`: time a new connection has to send its complete PROXY protocol header; past it the connection ' +
      'is closed and counted (`wasmux_proxy_headers_rejected_total{reason="timeout"}`)',
  },
  maxEventsPerWait: {
    flag: 'max-events',
    arg: '<n>',
    min: 1,
    max: 1024,
    default: 1024,
    applies: 'instance',
    help: 'events returned by one poll.wait',
    doc: 'events one `poll.wait` returns at most',
  },
} as const satisfies Record<string, Knob>;

export type KnobName = keyof typeof POLICY_KNOBS;
export const KNOB_NAMES = Object.keys(POLICY_KNOBS) as KnobName[];
/** The knobs each instance's thread gets (`applies: 'instance'`, and the memory cap, which the guest can ask for). */
export type InstanceKnob =
  | { [K in KnobName]: (typeof POLICY_KNOBS)[K]['applies'] extends 'instance' ? K : never }[KnobName]
  | 'maxMemoryMiB';
export const INSTANCE_KNOBS = KNOB_NAMES.filter((k) => POLICY_KNOBS[k].applies === 'instance' || k === 'maxMemoryMiB') as InstanceKnob[];

/** The knobs' values as an instance's thread gets them. */
export type InstanceKnobs = { readonly [K in InstanceKnob]: number };

/** Every knob's default. */
export const POLICY_DEFAULTS = Object.fromEntries(KNOB_NAMES.map((k) => [k, POLICY_KNOBS[k].default])) as {
  readonly [K in KnobName]: number;
};

/** The lists of a policy, beside its numeric knobs. */
export const POLICY_LISTS = {
  listen: {
    flag: 'listen',
    arg: '<host:port>',
    doc: 'addresses the plugin serves and may listen on (port 0: any free port)',
    none: 'none',
  },
  connect: {
    flag: 'allow-connect',
    arg: '<rule>',
    doc: 'outbound rules `host[/prefix]:port[-port]` or `host:*`, IPv6 in brackets',
    none: 'none: no outbound connections',
  },
} as const;

/** The switches of a policy (true or false), beside its knobs and lists. */
export const POLICY_SWITCHES = {
  proxyProtocol: {
    flag: 'proxy-protocol',
    default: false,
    help:
      'every connection starts with a PROXY protocol header (v1 or v2, as HAProxy send-proxy[-v2] writes it); ' +
      'peer-address is the client it names; a connection without a valid one is closed',

    doc:
      'every accepted connection starts with a PROXY protocol header, version 1 or 2 (told apart by their signatures, as ' +
      "HAProxy's `accept-proxy` does); the host reads it before the plugin sees the connection, and `tcp.peer-address` " +
      'is the client it names. A missing, malformed, truncated, oversized or slow header closes the connection, counted ' +
      '(see PROXY protocol under Operating wasmux)',
  },
} as const;
export type SwitchName = keyof typeof POLICY_SWITCHES;
export const SWITCH_NAMES = Object.keys(POLICY_SWITCHES) as SwitchName[];

/** A plugin's policy: everything it may reach and every limit it runs under. */
export type Policy = {
  /** Addresses the plugin serves and may listen on; nothing else. */
  listen: SocketAddress[];
  /** Outbound connections allowed; empty = none (the default). */
  connect: ConnectRule[];
} & { [K in KnobName]: number } & { [K in SwitchName]: boolean };

/** What a policy file may contain (all optional; unknown keys are an error). */
export type PolicyInput = {
  listen?: string[];
  connect?: string[];
} & { [K in KnobName]?: number } & { [K in SwitchName]?: boolean };

export const MIB = 1024 * 1024;

/** The knobs an instance's thread gets, from a policy. */
export function instanceKnobs(p: Policy): InstanceKnobs {
  return Object.fromEntries(INSTANCE_KNOBS.map((k) => [k, p[k]])) as InstanceKnobs;
}

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

function integer(where: string, key: KnobName, v: unknown): number {
  const { min, max } = POLICY_KNOBS[key];
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
  const p = {
    listen: [],
    connect: [],
    ...POLICY_DEFAULTS,
    ...Object.fromEntries(SWITCH_NAMES.map((k) => [k, POLICY_SWITCHES[k].default])),
  } as unknown as Policy;
  const known = ['listen', 'connect', ...SWITCH_NAMES, ...KNOB_NAMES];
  for (const { where, input } of inputs) {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) bad(where, 'a policy is a JSON object');
    for (const key of Object.keys(input)) {
      if (!known.includes(key)) bad(where, `unknown key "${key}" (known: ${known.join(', ')})`);
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
      p.connect = p.connect.concat(
        input.connect.map((t) => (typeof t === 'string' ? parseConnectRule(t, where) : bad(where, 'connect rules are strings'))),
      );
    }
    for (const key of SWITCH_NAMES) {
      const v = input[key];
      if (v !== undefined && typeof v !== 'boolean') bad(where, `${key} must be true or false (got ${JSON.stringify(v)})`);
      if (v !== undefined) p[key] = v;
    }
    for (const key of KNOB_NAMES) {
      if (input[key] !== undefined) p[key] = integer(where, key, input[key]);
    }
  }
  return p;
}

/** The policy as plain JSON (for logs, inspect, the API): a valid policy file. */
export function describePolicy(p: Policy): Required<PolicyInput> {
  return {
    listen: p.listen.map(String),
    connect: p.connect.map((r) => r.text),
    ...Object.fromEntries(SWITCH_NAMES.map((k) => [k, p[k]])),
    ...Object.fromEntries(KNOB_NAMES.map((k) => [k, p[k]])),
  } as Required<PolicyInput>;
}
