/**
 * deploy/: the example systemd unit, Kubernetes manifest and HAProxy
 * configuration say what wasmux does.
 *
 *   - every flag they give `wasmux run` is one `wasmux run --help` lists,
 *     and the whole command line parses: run with the plugin file swapped
 *     for a missing one, it stops at reading that file (WASMUX_ERR_IO), not
 *     at an argument;
 *   - the unit: SIGHUP on reload, SIGTERM on stop, TimeoutStopSec above
 *     --drain-timeout, restarts on failure, the hardening options;
 *   - the manifest: /readyz and /healthz probes on the port --admin names, a
 *     preStop hook, a grace period above preStop + drain, a Service whose
 *     target is the --listen port;
 *   - haproxy.cfg: `haproxy -c` accepts it with its placeholders set (when
 *     haproxy is installed), PROXY v2 to the hosts, `GET /readyz` checks on
 *     the admin port.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ROOT, wasmux } from '../helpers/cli.js';

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The flags `wasmux run --help` lists ("--listen", "--help"...). */
async function helpFlags(): Promise<Set<string>> {
  const r = await wasmux(['run', '--help']);
  expect(r.code).toBe(0);
  return new Set(r.stdout.match(/--[a-z][a-z-]*/g));
}

/** The value after `flag` in `args`, or undefined. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** Checks a `wasmux run` command line (`args` from "run" on): its flags are listed by --help and it parses. */
async function checkRunArgs(args: readonly string[], plugin: string): Promise<void> {
  expect(args[0]).toBe('run');
  const help = await helpFlags();
  const flags = args.filter((a) => a.startsWith('--'));
  expect(flags.filter((f) => !help.has(f))).toEqual([]);

  // The whole line, through the real parser: a missing plugin file is the
  // first thing that stops it. The admin endpoint (it listens before the
  // plugins load) goes to a free port instead of the example's.
  const dir = mkdtempSync(join(tmpdir(), 'wasmux-deploy-'));
  try {
    const missing = join(dir, 'missing.wasm');
    const line = args.slice(1).map((a, i, all) => (a === plugin ? missing : all[i - 1] === '--admin' ? '127.0.0.1:0' : a));
    expect(line).toContain(missing);
    const r = await wasmux(['run', ...line]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('WASMUX_ERR_IO');
    expect(r.stderr).toContain(missing);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const DRAIN_DEFAULT_MS = 5000;
const drainMs = (args: readonly string[]) => Number(flagValue(args, '--drain-timeout') ?? DRAIN_DEFAULT_MS);
/** How long a SIGTERM keeps the process serving before the drain starts (--shutdown-delay, 0 without it). */
const delayMs = (args: readonly string[]) => Number(flagValue(args, '--shutdown-delay') ?? 0);
const portOf = (address: string) => Number(/:(\d+)$/.exec(address)?.[1]);

// ---- systemd ------------------------------------------------------------------------------

/** A unit file's sections: name -> key -> values (a key may repeat); comments and blank lines left out. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      continue;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv || current === null) throw new Error(`line ${n + 1}: not Key=value in a section: ${raw}`);
    if (raw.endsWith('\\')) throw new Error(`line ${n + 1}: continuation lines are not handled here`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  }
  return sections;
}

/** A systemd time span ("20s", "1min 30s", "500ms", "20") in ms. */
function timespanMs(s: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000 };
  let ms = 0;
  for (const part of s.trim().split(/\s+/)) {
    const m = /^(\d+)([a-z]*)$/.exec(part);
    if (!m || (m[2] !== '' && units[m[2]!] === undefined)) throw new Error(`not a time span: ${s}`);
    ms += Number(m[1]) * (m[2] === '' ? 1000 : units[m[2]!]!);
  }
  return ms;
}

describe('deploy/systemd/wasmux.service', () => {
  const unit = parseUnit(read('deploy/systemd/wasmux.service'));
  const service = unit.get('Service')!;
  const one = (key: string) => {
    const v = service.get(key);
    expect(v, key).toHaveLength(1);
    return v![0]!;
  };
  const execStart = one('ExecStart').split(/\s+/);

  it('has the sections and a wasmux run command line whose flags exist and parse', async () => {
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
    expect(execStart[0]).toMatch(/^\/.*\/wasmux$/);
    const plugin = execStart[2]!;
    expect(plugin).toMatch(/\.wasm$/);
    await checkRunArgs(execStart.slice(1), plugin);
    expect(flagValue(execStart, '--admin')).toBe('127.0.0.1:9090');
    expect(flagValue(execStart, '--log-format')).toBe('json');
    // Behind HAProxy, which sends PROXY v2 (deploy/haproxy/haproxy.cfg).
    expect(execStart).toContain('--proxy-protocol');
  });

  it('reloads with SIGHUP, stops with SIGTERM and waits longer than the drain before SIGKILL', () => {
    expect(one('ExecReload')).toMatch(/^(\/(usr\/)?bin\/)?kill -HUP \$MAINPID$/);
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(timespanMs(one('TimeoutStopSec'))).toBeGreaterThan(delayMs(execStart) + drainMs(execStart));
    expect(one('Restart')).toBe('on-failure');
  });

  it('confines the process', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('PrivateTmp')).toBe('yes');
    expect(service.has('DynamicUser') || service.has('User')).toBe(true);
    expect(Number(one('LimitNOFILE'))).toBeGreaterThanOrEqual(65536);
    // V8 writes machine code: W^X on memory would stop it.
    expect(service.has('MemoryDenyWriteExecute')).toBe(false);
  });

  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  it.skipIf(analyze.status !== 0)('passes systemd-analyze verify (but for the wasmux command not being installed here)', () => {
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(ROOT, 'deploy/systemd/wasmux.service')], { encoding: 'utf8' });
    const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '' && !/Command \S+ is not executable/.test(l));
    expect(complaints).toEqual([]);
  });
});

// ---- Kubernetes ---------------------------------------------------------------------------

interface Port {
  name?: string;
  containerPort: number;
}
interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  command: string[];
  args: string[];
  ports: Port[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } };
}
interface Manifest {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

describe('deploy/kubernetes/wasmux.yaml', () => {
  const docs = parseAllDocuments(read('deploy/kubernetes/wasmux.yaml'));
  const manifests = docs.map((d) => d.toJS() as Manifest);
  const deployment = manifests.find((m) => m.kind === 'Deployment')!;
  const spec = deployment.spec as {
    replicas: number;
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string> };
      spec: { terminationGracePeriodSeconds: number; containers: Container[] };
    };
  };
  const container = spec.template.spec.containers[0]!;
  const args = [...container.command.slice(1), ...container.args];
  /** A probe's port as a number (a name is looked up in the container's ports). */
  const probePort = (p: string | number) => (typeof p === 'number' ? p : container.ports.find((x) => x.name === p)?.containerPort);

  it('parses: a Deployment and a Service, no YAML errors', () => {
    expect(docs.flatMap((d) => d.errors.map(String))).toEqual([]);
    expect(manifests.map((m) => m.kind)).toEqual(['Deployment', 'Service']);
    expect(spec.replicas).toBe(2);
    expect(spec.template.metadata.labels).toMatchObject(spec.selector.matchLabels);
  });

  it('runs wasmux with flags that exist and parse, and exposes the --listen and --admin ports', async () => {
    expect(container.command[0]).toBe('wasmux');
    const plugin = args[1]!;
    expect(plugin).toMatch(/\.wasm$/);
    await checkRunArgs(args, plugin);
    const ports = container.ports.map((p) => p.containerPort);
    expect(ports).toContain(portOf(flagValue(args, '--listen')!));
    expect(ports).toContain(portOf(flagValue(args, '--admin')!));
  });

  it('probes /readyz (readiness) and /healthz (liveness) on the admin port', () => {
    const admin = portOf(flagValue(args, '--admin')!);
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(probePort(container.readinessProbe!.httpGet!.port)).toBe(admin);
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(probePort(container.livenessProbe!.httpGet!.port)).toBe(admin);
  });

  it('waits in preStop, and gives preStop and the drain together less than the grace period', () => {
    const preStop = container.lifecycle?.preStop;
    expect(preStop).toBeDefined();
    // The kubelet's sleep action: no shell, no sleep binary in the image.
    const seconds = preStop!.sleep?.seconds ?? Number(preStop!.exec?.command.at(-1));
    expect(seconds).toBeGreaterThan(0);
    expect(spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(seconds * 1000 + delayMs(args) + drainMs(args));
  });

  it('has a Service that selects the pods and targets the --listen port', () => {
    const service = manifests.find((m) => m.kind === 'Service')!.spec as {
      selector: Record<string, string>;
      ports: { port: number; targetPort: string | number }[];
    };
    expect(spec.template.metadata.labels).toMatchObject(service.selector);
    expect(service.ports.map((p) => probePort(p.targetPort))).toEqual([portOf(flagValue(args, '--listen')!)]);
  });
});

// ---- HAProxy ------------------------------------------------------------------------------

describe('deploy/haproxy/haproxy.cfg', () => {
  const text = read('deploy/haproxy/haproxy.cfg');
  const lines = text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');

  it('sends PROXY v2 to the hosts and checks GET /readyz on their admin port', () => {
    expect(lines).toContain('option httpchk GET /readyz');
    expect(lines).toContain('http-check expect status 200');
    const defaults = lines.find((l) => l.startsWith('default-server '))!;
    expect(defaults.split(/\s+/)).toEqual(expect.arrayContaining(['check', 'send-proxy-v2']));
    // The checks go to the admin endpoint, which does not read a PROXY header.
    expect(text).not.toContain('check-send-proxy');
    const servers = lines.filter((l) => l.startsWith('server '));
    expect(servers.length).toBeGreaterThanOrEqual(2);
    for (const s of servers) expect(s).toMatch(/ port "\$\{WASMUX_ADMIN_PORT\d-\d+\}"$/);
  });

  it("is what the README's Scaling out section quotes", () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('## Scaling out'));
    const quoted = /Its heart:\n\n```\n([\s\S]*?)```/.exec(section)?.[1];
    expect(quoted).toBeDefined();
    const quotedLines = quoted!
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
    expect(quotedLines.length).toBeGreaterThan(5);
    for (const l of quotedLines) expect(lines, l).toContain(l);
  });

  const haproxy = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  const noHaproxy = haproxy.error !== undefined || haproxy.status !== 0;
  if (noHaproxy && process.env.WASMUX_REQUIRE_HAPROXY === '1') throw new Error('WASMUX_REQUIRE_HAPROXY=1 but haproxy is not installed');
  it.skipIf(noHaproxy)('is a valid configuration for haproxy -c, with its defaults and with placeholders set', () => {
    for (const env of [
      {},
      {
        WASMUX_FRONTEND: '127.0.0.1:8000',
        WASMUX_HOST1: '127.0.0.1:8001',
        WASMUX_ADMIN_PORT1: '9001',
        WASMUX_HOST2: '127.0.0.1:8002',
        WASMUX_ADMIN_PORT2: '9002',
        WASMUX_CHECK_INTER: '200ms',
        WASMUX_CHECK_FALL: '1',
        WASMUX_CHECK_RISE: '1',
        WASMUX_HAPROXY_LOG: 'stderr',
        WASMUX_HAPROXY_SOCKET: join(tmpdir(), 'wasmux-haproxy-check.sock'),
      },
    ]) {
      const r = spawnSync('haproxy', ['-c', '-f', join(ROOT, 'deploy/haproxy/haproxy.cfg')], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
      });
      expect(`${r.stdout}${r.stderr}`).toContain('Configuration file is valid');
      expect(r.stderr).not.toMatch(/WARNING|ALERT/);
      expect(r.status).toBe(0);
    }
  });
});
