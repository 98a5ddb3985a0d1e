/**
 * Scaling out: HAProxy (Debian's haproxy 2.6) in front of two `wasmux run`
 * hosts, configured by deploy/haproxy/haproxy.cfg itself — its placeholders
 * given as environment variables, the health-check timers tightened (inter
 * 200 ms, fall 1, rise 1) so the test is short.
 *
 *   - traffic through HAProxy reaches both hosts (each host's admin
 *     /metrics counts accepted connections; HAProxy's stats count sessions);
 *   - `GET /ip` through HAProxy answers the client's address: the client
 *     connects from 127.0.0.2, HAProxy connects to the hosts from 127.0.0.1
 *     (the kernel's source for a loopback destination) and passes the
 *     client's address in a PROXY v2 header, which the hosts read
 *     (--proxy-protocol);
 *   - one host is stopped (SIGTERM: it closes its listeners and drains,
 *     /readyz says 503, then the admin port closes) in the middle of a load:
 *     HAProxy takes it out of the rotation within its check interval, and
 *     every request started after inter × (fall + 1) plus a margin
 *     succeeds. Failures before that are allowed (HAProxy's retries and
 *     redispatch usually hide them) and printed: a connection HAProxy made
 *     that was still in the listener's queue when the listeners closed is
 *     reset after the request went out, a 502 HAProxy does not retry;
 *   - the rolling restart that avoids those: the stopped host started again
 *     on its ports, the other one set to `drain` on HAProxy's runtime API
 *     (no new request goes to it), SIGTERM once its last session ended —
 *     no request fails.
 *
 * HAProxy runs in the foreground (-db), with its own configuration, stats
 * socket and ports in a temporary folder, and is stopped by its pid at the
 * end. Without haproxy the file is skipped; with WASMUX_REQUIRE_HAPROXY=1
 * (set by .ci/run, which installs it) a missing haproxy is a failure.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, type Running, startRun } from '../helpers/cli.js';

/**
 * The hosts run with --proxy-protocol and HAProxy sends PROXY v2 (the
 * deployment's shape). false: the hosts and HAProxy speak plain HTTP and
 * the `/ip` check is left out (for a host without --proxy-protocol).
 */
const PROXY = true;

const DEPLOY_CFG = join(ROOT, 'deploy/haproxy/haproxy.cfg');
const INTER_MS = 200;
const FALL = 1;
const RISE = 1;
/** After a host stops, the time HAProxy may take to notice: a check interval to the next check, `fall` failed checks, a margin for two busy cores. */
const NOTICE_MS = INTER_MS * (FALL + 1) + 500;
/** --shutdown-delay of the last test: longer than HAProxy needs to notice. */
const DELAY_MS = NOTICE_MS + 300;
/** The client's source address, distinct from HAProxy's own (127.0.0.1). */
const CLIENT_ADDRESS = '127.0.0.2';

function haproxyMissing(): string | null {
  const r = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0) return 'haproxy is not installed (Debian: apt-get install haproxy)';
  return null;
}
const missing = haproxyMissing();
if (missing !== null && process.env.WASMUX_REQUIRE_HAPROXY === '1') throw new Error(`WASMUX_REQUIRE_HAPROXY=1 but ${missing}`);

/** A port nobody listens on now (HAProxy cannot bind port 0 and say which it got). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Host {
  run: Running;
  adminPort: number;
  exited: boolean;
}

/** Starts a host on free ports, or on `ports` (a restart where HAProxy expects it). */
async function startHost(ports?: { traffic: number; admin: number }, extra: string[] = []): Promise<Host> {
  const args = ['dist/plugins/http.wasm', '--listen', `127.0.0.1:${ports?.traffic ?? 0}`];
  if (PROXY) args.push('--proxy-protocol');
  args.push('--admin', `127.0.0.1:${ports?.admin ?? 0}`, '--drain-timeout', '2000', ...extra);
  const run = await startRun(args);
  const m = /admin endpoint on http:\/\/127\.0\.0\.1:(\d+)/.exec(run.output().stdout);
  if (!m) throw new Error(`no admin line in: ${run.output().stdout}`);
  const host: Host = { run, adminPort: Number(m[1]), exited: false };
  run.child.once('exit', () => (host.exited = true));
  return host;
}

/** When HAProxy (its stats socket) marks `server` down, within 5 s of `since` (null: it did not), and its check status then. */
async function markedDown(h: Haproxy, server: string, since: number): Promise<{ downAt: number | null; downStatus: string }> {
  while (performance.now() - since < 5000) {
    const s = (await stats(h)).get(server)!;
    if (s.status.startsWith('DOWN')) return { downAt: performance.now(), downStatus: s.checkStatus };
    await sleep(20);
  }
  return { downAt: null, downStatus: '' };
}

/** Connections the host accepted (every instance), from its admin /metrics. */
async function accepted(h: Host): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${h.adminPort}/metrics`)).text();
  return [...text.matchAll(/^wasmux_connections_accepted_total\{[^}]*\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

interface Haproxy {
  child: ChildProcess;
  port: number;
  socket: string;
  /** Its stderr, the lines of each request's log left out (counted instead). */
  lines: string[];
  requestsLogged: () => number;
  exited: Promise<void>;
}

/** Starts haproxy -db on `cfg` with `env`, on a free frontend port (another one if that was taken meanwhile). */
async function startHaproxy(cfg: string, dir: string, hosts: Host[]): Promise<Haproxy> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const socket = join(dir, `haproxy-${attempt}.sock`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      WASMUX_FRONTEND: `127.0.0.1:${port}`,
      WASMUX_HOST1: `127.0.0.1:${hosts[0]!.run.port}`,
      WASMUX_ADMIN_PORT1: String(hosts[0]!.adminPort),
      WASMUX_HOST2: `127.0.0.1:${hosts[1]!.run.port}`,
      WASMUX_ADMIN_PORT2: String(hosts[1]!.adminPort),
      WASMUX_CHECK_INTER: `${INTER_MS}ms`,
      WASMUX_CHECK_FALL: String(FALL),
      WASMUX_CHECK_RISE: String(RISE),
      WASMUX_HAPROXY_LOG: 'stderr',
      WASMUX_HAPROXY_SOCKET: socket,
    };
    const child = spawn('haproxy', ['-f', cfg, '-db'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const lines: string[] = [];
    let logged = 0;
    let partial = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      const parts = (partial + d).split('\n');
      partial = parts.pop()!;
      for (const l of parts) {
        if (/"(GET|HEAD|POST) /.test(l)) logged++;
        else lines.push(l);
      }
    });
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    let gone = false;
    void exited.then(() => (gone = true));
    const h: Haproxy = { child, port, socket, lines, requestsLogged: () => logged, exited };
    // Up once its stats socket answers and both hosts have passed a check.
    const deadline = performance.now() + 10_000;
    for (;;) {
      if (gone) break;
      const st = await stats(h).catch(() => null);
      if (st !== null && st.get('wasmux1')?.status === 'UP' && st.get('wasmux2')?.status === 'UP') return h;
      if (performance.now() > deadline) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`haproxy not up with both hosts within 10 s: ${lines.join('\n')}`);
      }
      await sleep(50);
    }
    const out = lines.join('\n');
    if (attempt < 5 && /cannot bind socket|Address already in use/i.test(out)) continue;
    throw new Error(`haproxy exited at start: ${out}`);
  }
}

async function stopHaproxy(h: Haproxy): Promise<void> {
  if (h.child.exitCode !== null || h.child.signalCode !== null) return;
  h.child.kill('SIGTERM');
  const t = setTimeout(() => h.child.kill('SIGKILL'), 3000);
  await h.exited;
  clearTimeout(t);
}

interface ServerStat {
  status: string;
  checkStatus: string;
  /** Sessions sent to the server in all, and open now. */
  sessions: number;
  current: number;
}

/** One command on HAProxy's runtime API (its stats socket); resolves with the answer. */
function runtimeApi(h: Haproxy, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(h.socket, () => s.write(`${command}\n`));
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (text += d));
    s.on('error', reject);
    s.on('end', () => resolve(text));
  });
}

/** HAProxy's `show stat` for the backend's servers, by name. */
async function stats(h: Haproxy): Promise<Map<string, ServerStat>> {
  const text = await runtimeApi(h, 'show stat');
  const [head, ...rows] = text.trim().split('\n');
  if (!head?.startsWith('# ')) throw new Error(`not a stat answer: ${text}`);
  const cols = head.slice(2).split(',');
  const col = (name: string) => cols.indexOf(name);
  const out = new Map<string, ServerStat>();
  for (const r of rows) {
    const f = r.split(',');
    if (f[col('pxname')] !== 'wasmux' || f[col('svname')] === 'BACKEND') continue;
    out.set(f[col('svname')]!, {
      status: f[col('status')]!,
      checkStatus: f[col('check_status')]!,
      sessions: Number(f[col('stot')]),
      current: Number(f[col('scur')]),
    });
  }
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

interface Outcome {
  start: number;
  end: number;
  status: number | null;
  body: string;
  error: string | null;
}

/** One GET through a connection of its own (no keep-alive), from `localAddress`; never rejects. */
function get(port: number, path: string, localAddress = '127.0.0.1'): Promise<Outcome> {
  const start = performance.now();
  return new Promise((resolve) => {
    const done = (status: number | null, body: string, error: string | null) =>
      resolve({ start, end: performance.now(), status, body, error });
    const req = request({ host: '127.0.0.1', port, path, localAddress, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => done(res.statusCode ?? null, body, null));
      res.on('error', (e) => done(res.statusCode ?? null, body, e.message));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => done(null, '', e.message));
    req.end();
  });
}

const ok = (o: Outcome) => o.error === null && o.status === 200 && o.body.startsWith('Hello');

/** `concurrency` loops of GET / until `ms` have passed or `max` requests were made. */
async function load(port: number, opts: { ms: number; max: number; concurrency: number }): Promise<Outcome[]> {
  const out: Outcome[] = [];
  const end = performance.now() + opts.ms;
  let started = 0;
  const loop = async () => {
    while (performance.now() < end && started < opts.max) {
      started++;
      out.push(await get(port, '/'));
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, loop));
  return out;
}

describe.skipIf(missing !== null)(`HAProxy in front of two wasmux hosts${missing ? ` — skipped: ${missing}` : ''}`, () => {
  let dir = '';
  const hosts: Host[] = [];
  let haproxy: Haproxy | null = null;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wasmux-haproxy-'));
    hosts.push(await startHost(), await startHost());
    let cfg = DEPLOY_CFG;
    if (!PROXY) {
      const text = readFileSync(DEPLOY_CFG, 'utf8');
      if (!text.includes(' send-proxy-v2')) throw new Error('deploy/haproxy/haproxy.cfg: no send-proxy-v2 to leave out');
      cfg = join(dir, 'haproxy.cfg');
      writeFileSync(cfg, text.replace(' send-proxy-v2', ''));
    }
    haproxy = await startHaproxy(cfg, dir, hosts);
  });

  afterAll(async () => {
    if (haproxy !== null) await stopHaproxy(haproxy);
    for (const h of hosts) if (!h.exited) await h.run.stop('SIGKILL');
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('spreads requests over both hosts', async () => {
    const before = await Promise.all(hosts.map(accepted));
    const results = await load(haproxy!.port, { ms: 10_000, max: 200, concurrency: 4 });
    const after = await Promise.all(hosts.map(accepted));
    const st = await stats(haproxy!);
    const perHost = after.map((n, i) => n - before[i]!);
    console.log(
      `haproxy: ${results.length} requests, ${results.filter(ok).length} ok; accepted by the hosts: ${perHost.join(' + ')}; ` +
        `haproxy sessions per server: ${st.get('wasmux1')!.sessions} + ${st.get('wasmux2')!.sessions}`,
    );
    expect(results.filter((o) => !ok(o))).toEqual([]);
    expect(results).toHaveLength(200);
    // Round robin: each host gets about half; at least a quarter is a loose bound.
    for (const n of perHost) expect(n).toBeGreaterThanOrEqual(50);
  });

  it.skipIf(!PROXY)("answers GET /ip with the client's address (PROXY v2), not HAProxy's", async () => {
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      const o = await get(haproxy!.port, '/ip', CLIENT_ADDRESS);
      expect(o.error).toBeNull();
      expect(o.status).toBe(200);
      answers.push(o.body.trim());
    }
    // Six requests in turn: three to each host.
    expect(answers).toEqual(Array(6).fill(CLIENT_ADDRESS));
  });

  it("stops sending to a host that drains once HAProxy's check has seen it: every request after the check interval succeeds", async () => {
    const [a, b] = hosts as [Host, Host];
    const bBefore = await accepted(b);
    const t0 = performance.now();
    const loading = load(haproxy!.port, { ms: 3000, max: 20_000, concurrency: 4 });
    await sleep(800);
    const stopAt = performance.now();
    const stopped = a.run.stop('SIGTERM');
    const { downAt, downStatus } = await markedDown(haproxy!, 'wasmux1', stopAt);
    const results = await loading;
    const end = await stopped;
    const bAfter = await accepted(b);

    // Before: ended before the SIGTERM. Around: in flight at the SIGTERM or
    // started before HAProxy could have noticed (failures allowed, printed).
    // After: started once HAProxy must have noticed (none may fail).
    const before = results.filter((o) => o.end < stopAt);
    const around = results.filter((o) => o.end >= stopAt && o.start < stopAt + NOTICE_MS);
    const after = results.filter((o) => o.start >= stopAt + NOTICE_MS);
    const failed = (xs: Outcome[]) => xs.filter((o) => !ok(o));
    const describeFailure = (o: Outcome) =>
      `started at ${Math.round(o.start - stopAt)} ms from the stop: ${o.error ?? `status ${o.status}`}${o.body ? ` ${JSON.stringify(o.body.slice(0, 80))}` : ''}`;
    console.log(
      `haproxy: ${results.length} requests in ${Math.round(performance.now() - t0)} ms (4 clients, a connection each); ` +
        `host 1 stopped (SIGTERM) at +${Math.round(stopAt - t0)} ms, exited after ${Math.round(end.ms)} ms (code ${end.code}), ` +
        `marked DOWN by HAProxy after ${downAt === null ? '—' : Math.round(downAt - stopAt)} ms (${downStatus}); ` +
        `ended before the stop: ${before.length}, ${failed(before).length} failed; ` +
        `in flight at the stop or started within ${NOTICE_MS} ms of it: ${around.length}, ${failed(around).length} failed; ` +
        `started after that: ${after.length}, ${failed(after).length} failed; host 2 accepted ${bAfter - bBefore} meanwhile`,
    );
    for (const o of failed(around)) console.log(`  failed around the stop: ${describeFailure(o)}`);
    for (const o of failed(after)) console.log(`  failed after the check interval: ${describeFailure(o)}`);
    console.log(`haproxy says:\n${haproxy!.lines.filter((l) => /is (DOWN|UP)|ALERT/.test(l)).join('\n')}`);

    expect(end.code).toBe(0);
    expect(downAt).not.toBeNull();
    expect(downAt! - stopAt).toBeLessThan(NOTICE_MS);
    expect(failed(before)).toEqual([]);
    expect(after.length).toBeGreaterThan(50);
    expect(failed(after).map(describeFailure)).toEqual([]);
    expect(bAfter - bBefore).toBeGreaterThan(after.length / 2);
    // HAProxy still serves with one host: the other's rotation is not empty.
    expect((await stats(haproxy!)).get('wasmux2')!.status).toBe('UP');
  });

  it('restarts a host without a failed request when HAProxy is told first: drain on its runtime API, then SIGTERM', async () => {
    // Host 1 again (stopped above), on the ports HAProxy expects it on.
    const ports = { traffic: hosts[0]!.run.port, admin: hosts[0]!.adminPort };
    let restarted: Host | null = null;
    for (let attempt = 1; restarted === null; attempt++) {
      try {
        restarted = await startHost(ports);
      } catch (e) {
        if (attempt >= 5) throw e;
        await sleep(200);
      }
    }
    hosts[0] = restarted;
    const b = hosts[1]!;
    await expect.poll(async () => (await stats(haproxy!)).get('wasmux1')!.status, { timeout: 5000, interval: 50 }).toBe('UP');

    const t0 = performance.now();
    const loading = load(haproxy!.port, { ms: 3000, max: 20_000, concurrency: 4 });
    await sleep(800);
    const drainAt = performance.now();
    expect((await runtimeApi(haproxy!, 'set server wasmux/wasmux2 state drain')).trim()).toBe('');
    // No new request goes to host 2; the ones it has finish.
    await expect.poll(async () => (await stats(haproxy!)).get('wasmux2')!.current, { timeout: 5000, interval: 20 }).toBe(0);
    const stopAt = performance.now();
    const end = await b.run.stop('SIGTERM');
    const results = await loading;
    const failures = results.filter((o) => !ok(o));
    console.log(
      `haproxy: ${results.length} requests in ${Math.round(performance.now() - t0)} ms; host 2 set to drain at +${Math.round(drainAt - t0)} ms, ` +
        `its last session done ${Math.round(stopAt - drainAt)} ms later, then SIGTERM: exited after ${Math.round(end.ms)} ms (code ${end.code}); ` +
        `${failures.length} failed, ${results.filter((o) => o.start >= stopAt).length} started after the SIGTERM`,
    );
    for (const o of failures)
      console.log(`  failed: started at ${Math.round(o.start - stopAt)} ms from the SIGTERM: ${o.error ?? `status ${o.status}`}`);
    expect(end.code).toBe(0);
    expect(failures).toEqual([]);
    expect(results.filter((o) => o.start >= stopAt + 500).length).toBeGreaterThan(50);
  });

  it('stops a host with --shutdown-delay without a failed request: /readyz says 503 while it still serves, HAProxy stops sending, then it drains', async () => {
    // Host 2 again (stopped above), on its ports, now with a shutdown delay
    // longer than HAProxy needs to notice (NOTICE_MS).
    const ports = { traffic: hosts[1]!.run.port, admin: hosts[1]!.adminPort };
    let restarted: Host | null = null;
    for (let attempt = 1; restarted === null; attempt++) {
      try {
        restarted = await startHost(ports, ['--shutdown-delay', String(DELAY_MS)]);
      } catch (e) {
        if (attempt >= 5) throw e;
        await sleep(200);
      }
    }
    hosts[1] = restarted;
    // The test above left it in HAProxy's drain state.
    expect((await runtimeApi(haproxy!, 'set server wasmux/wasmux2 state ready')).trim()).toBe('');
    await expect.poll(async () => (await stats(haproxy!)).get('wasmux2')!.status, { timeout: 5000, interval: 50 }).toBe('UP');

    const t0 = performance.now();
    const loading = load(haproxy!.port, { ms: 3000, max: 20_000, concurrency: 4 });
    await sleep(800);
    const stopAt = performance.now();
    const stopped = restarted.run.stop('SIGTERM');
    const { downAt, downStatus } = await markedDown(haproxy!, 'wasmux2', stopAt);
    const results = await loading;
    const end = await stopped;
    const failures = results.filter((o) => !ok(o));
    console.log(
      `haproxy: ${results.length} requests in ${Math.round(performance.now() - t0)} ms; host 2 (--shutdown-delay ${DELAY_MS}) got SIGTERM at +${Math.round(stopAt - t0)} ms, ` +
        `marked DOWN by HAProxy after ${downAt === null ? '—' : Math.round(downAt - stopAt)} ms (${downStatus}), exited after ${Math.round(end.ms)} ms (code ${end.code}); ` +
        `${failures.length} failed, ${results.filter((o) => o.start >= stopAt).length} started after the SIGTERM`,
    );
    for (const o of failures)
      console.log(`  failed: started at ${Math.round(o.start - stopAt)} ms from the SIGTERM: ${o.error ?? `status ${o.status}`}`);
    expect(end.code).toBe(0);
    expect(end.stderr).toMatch(/SIGTERM, not ready \(\/readyz 503\); serving \d+ ms more before draining/);
    expect(downAt).not.toBeNull();
    expect(downAt! - stopAt).toBeLessThan(DELAY_MS);
    expect(end.ms).toBeGreaterThanOrEqual(DELAY_MS);
    expect(failures).toEqual([]);
  });
});
