#!/usr/bin/env node
// HTTP benchmark: wasmux's http plugin against Node `http` (the baseline a user
// would otherwise reach for) and nginx (the practical reference, when installed),
// in one run on one machine, driven by wrk with the same settings for each:
// keep-alive `GET /` answered with a fixed 15-byte body.
//
// Each server runs in its own process, started fresh for each measurement. The
// runner reports wrk's req/s and latency, the server's own CPU time per request
// (from /proc, all its threads and processes), and ratios against Node http.
// With --rounds N the servers take turns N times and the median round counts:
// on a shared 2-core machine a single run is at the mercy of whatever else runs.
// See bench/README.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  ROOT,
  READY_TIMEOUT_MS,
  cli,
  clockTicksPerSecond,
  commandLine,
  cpuTicks,
  describeExit,
  explain,
  freePort,
  kernelRelease,
  killChildren,
  launch,
  onInterrupt,
  sleep,
  startAnnounced,
  stopServer,
  which,
  withTimeout,
} from './lib/process.mjs';
import { fmt, markdownTable, middleBy, ratio, writeResults } from './lib/report.mjs';

const HOST = '127.0.0.1';
const BODY = 'Hello, wasmux!\n';
const BASELINE = 'node-http';
const WASMUX_CLI = 'dist/host/cli/main.js';
const WASMUX_PLUGIN = 'dist/plugins/http.wasm';

const SERVERS = {
  wasmux: {
    unavailable: () => {
      const missing = [WASMUX_CLI, WASMUX_PLUGIN].filter((f) => !fs.existsSync(path.join(ROOT, f)));
      return missing.length ? `missing ${missing.join(', ')} (run npm run build first)` : null;
    },
    start: () => startWithPids('wasmux', [process.execPath, WASMUX_CLI, 'run', WASMUX_PLUGIN, '--listen', `${HOST}:0`]),
  },
  // The same, with the plugin's own metric (requests_total{class}) off: what counting costs.
  'wasmux-no-metrics': {
    explicitOnly: true,
    unavailable: () => SERVERS.wasmux.unavailable(),
    start: () =>
      startWithPids('wasmux-no-metrics', [
        process.execPath,
        WASMUX_CLI,
        'run',
        WASMUX_PLUGIN,
        '--listen',
        `${HOST}:0`,
        '--config',
        'metrics=0',
      ]),
  },
  'node-http': {
    unavailable: () => null,
    start: () => startWithPids('node-http', [process.execPath, 'bench/servers/node-http.mjs', '--host', HOST, '--port', '0']),
  },
  nginx: {
    unavailable: () =>
      which('nginx') ? null : 'nginx is not installed (command -v nginx found nothing; e.g. apt-get install -y nginx-light)',
    start: () => startNginx(),
  },
};

const USAGE = `usage: node bench/http.mjs [options]      (or: npm run bench:http -- [options])

  --servers LIST   comma-separated, from ${Object.keys(SERVERS).join(',')} (default: all but
                   wasmux-no-metrics; nginx is skipped with a message when not installed)
  --conns N        wrk connections (default 100)
  --threads N      wrk threads (default 1)
  --duration S     measured seconds per run, after a 1 s warmup run (default 10)
  --rounds N       every server runs N times, in turn; the median round is reported (default 1)
  --quick          --duration 3
  --help           this text

Prints a markdown table and writes everything to bench/out/http-<timestamp>.json.`;

const { fail, flags } = cli('http', USAGE);

function parseOptions() {
  const values = flags({
    servers: { type: 'string' },
    conns: { type: 'string', default: '100' },
    threads: { type: 'string', default: '1' },
    duration: { type: 'string' },
    rounds: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  const int = (text, what, min, max) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) fail(`${what} wants an integer from ${min} to ${max}, got '${text}'`);
    return n;
  };
  const servers = (
    values.servers ??
    Object.keys(SERVERS)
      .filter((k) => !SERVERS[k].explicitOnly)
      .join(',')
  )
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of servers) if (!(s in SERVERS)) fail(`unknown server '${s}'; known: ${Object.keys(SERVERS).join(', ')}`);
  if (servers.length === 0) fail('--servers is empty');
  return {
    servers,
    conns: int(values.conns, '--conns', 1, 10000),
    threads: int(values.threads, '--threads', 1, 64),
    duration: int(values.duration ?? (values.quick ? '3' : '10'), '--duration', 1, 3600),
    rounds: int(values.rounds, '--rounds', 1, 100),
  };
}

// Servers are tracked so that an interrupted run kills every process they
// started (nginx's workers too), not only the children launch() knows of.
const liveServers = new Set();

// A server that prints "listening on HOST:PORT" (wasmux on either stream): a
// single process.
async function startWithPids(name, argv) {
  const server = await startAnnounced(name, argv);
  return { ...server, pids: () => [server.proc.pid] };
}

async function accepts(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, HOST, () => {
      sock.destroy();
      resolve(true);
    });
    sock.on('error', () => resolve(false));
  });
}

// nginx with a configuration of its own in a temporary prefix: one worker, no
// logs, `GET /` answered from the configuration itself with the same body and
// Content-Type as the others; anything else 404.
async function startNginx() {
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmux-bench-nginx-'));
  const port = await freePort(HOST);
  // The temporary-file paths compiled into this nginx point into /var/lib/nginx;
  // send each to the prefix so nothing outside it is touched.
  const built = execFileSync('sh', ['-c', 'nginx -V 2>&1'], { encoding: 'utf8' });
  const temps = [...new Set([...built.matchAll(/--http-([a-z-]+)-temp-path=/g)].map((m) => m[1]))]
    .filter((kind) => !built.includes(`--without-http_${kind.replace('-', '_')}_module`))
    .map((kind) => `  ${kind.replace('-', '_')}_temp_path ${prefix}/${kind};`);
  fs.writeFileSync(
    path.join(prefix, 'nginx.conf'),
    [
      'worker_processes 1;',
      'daemon off;',
      'master_process on;',
      `pid ${prefix}/nginx.pid;`,
      'error_log stderr warn;',
      'events { worker_connections 4096; }',
      'http {',
      '  access_log off;',
      ...temps,
      `  server {`,
      `    listen ${HOST}:${port} backlog=4096;`,
      '    location = / {',
      '      default_type "text/plain; charset=utf-8";',
      `      return 200 "${BODY.replace('\n', '\\n')}";`,
      '    }',
      '    location / { return 404; }',
      '  }',
      '}',
      '',
    ].join('\n'),
  );
  const server = launch(['nginx', '-e', 'stderr', '-p', prefix, '-c', path.join(prefix, 'nginx.conf')]);
  server.cleanup = () => fs.rmSync(prefix, { recursive: true, force: true });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (server.proc.exitCode !== null || server.proc.signalCode !== null) break;
    if (await accepts(port)) {
      // The master and its worker(s): CPU is counted over all of them.
      const pids = () => {
        const master = server.proc.pid;
        let kids = [];
        try {
          kids = fs.readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
        } catch {
          /* no children file: the master alone */
        }
        return [master, ...kids];
      };
      return { ...server, port, pids };
    }
    await sleep(50);
  }
  await stopServer(server);
  throw new Error(explain('nginx: did not accept connections', server));
}

// utime + stime in clock ticks, summed over `pids` (all threads of each).
function cpuTicksOf(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      sum += cpuTicks(pid);
    } catch {
      /* gone */
    }
  }
  return sum;
}

// One request before the load: the server must answer GET / with 200 and the body.
function check(port) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port, path: '/', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        if (res.statusCode === 200 && body === BODY) resolve(res.headers);
        else reject(new Error(`GET / answered ${res.statusCode} ${JSON.stringify(body)}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error('GET / timed out')));
    req.on('error', reject);
  });
}

const UNIT_US = { us: 1, ms: 1000, s: 1e6 };
function micros(text) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  return m ? Number(m[1]) * UNIT_US[m[2]] : null;
}

// wrk's report, as numbers.
function parseWrk(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : null;
  };
  const lat = /Latency\s+(\S+)\s+(\S+)\s+(\S+)/.exec(text);
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text);
    return m ? micros(m[1]) : null;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    reqPerSec: num(/Requests\/sec:\s+([\d.]+)/),
    requests: num(/(\d+) requests in/),
    latencyAvgUs: lat ? micros(lat[1]) : null,
    latencyMaxUs: lat ? micros(lat[3]) : null,
    p50us: pct(50),
    p75us: pct(75),
    p90us: pct(90),
    p99us: pct(99),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) ?? 0,
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

// Runs wrk to completion; with `measure`, samples the server's and wrk's CPU
// over a window inside the run (after connection setup, before the end).
async function runWrk(server, opts, seconds, measure, clkTck) {
  const argv = ['wrk', `-t${opts.threads}`, `-c${opts.conns}`, `-d${seconds}s`, '--latency', `http://${HOST}:${server.port}/`];
  const stdout = [];
  const wrk = launch(argv, (line, stream) => {
    if (stream === 'stdout') stdout.push(line);
  });
  let first, last;
  const sample = () => ({ server: cpuTicksOf(server.pids()), wrk: cpuTicksOf([wrk.proc.pid]), ns: process.hrtime.bigint() });
  const timers = [];
  if (measure) {
    const lead = Math.min(500, seconds * 100);
    timers.push(
      setTimeout(() => {
        first = sample();
      }, lead),
    );
    timers.push(
      setTimeout(
        () => {
          last = sample();
        },
        seconds * 1000 - lead,
      ),
    );
  }
  const exit = await withTimeout(wrk.exited, seconds * 1000 + 30000, () => {
    wrk.proc.kill('SIGKILL');
    return wrk.exited.then(() => ({ code: null, signal: 'SIGKILL (runner timeout)' }));
  });
  for (const t of timers) clearTimeout(t);
  const text = stdout.join('\n');
  if (exit.code !== 0) throw new Error(explain(`wrk failed (${describeExit(exit)}): ${text}`, wrk));
  const r = parseWrk(text);
  if (r.reqPerSec === null) throw new Error(`could not read wrk's report:\n${text}`);
  if (measure && first && last) {
    const windowSec = Number(last.ns - first.ns) / 1e9;
    r.serverCpuPct = (100 * (last.server - first.server)) / clkTck / windowSec;
    r.wrkCpuPct = (100 * (last.wrk - first.wrk)) / clkTck / windowSec;
    // CPU rate over the sampled window divided by wrk's request rate.
    r.cpuUsPerReq = (r.serverCpuPct / 100 / r.reqPerSec) * 1e6;
  }
  r.wrkCommand = argv.join(' ');
  r.raw = text;
  return r;
}

async function runCell(name, opts, clkTck) {
  const server = await SERVERS[name].start();
  liveServers.add(server);
  let result, error;
  try {
    const headers = await check(server.port);
    await runWrk(server, opts, 1, false, clkTck); // warmup: JITs, caches, connection setup
    result = await runWrk(server, opts, opts.duration, true, clkTck);
    result.responseHeaders = headers;
    if (result.non2xx || result.socketErrors) {
      result.error = `${result.non2xx} non-2xx responses, ${result.socketErrors} socket errors`;
    }
  } catch (err) {
    error = err;
  }
  const stop = await stopServer(server);
  liveServers.delete(server);
  if (error) throw error;
  return { ...result, serverExit: stop.exit, serverNeededSigkill: stop.sigkill };
}

const fmtK = (n) => (n == null ? '–' : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
const fmtMs = (us) => (us == null ? '–' : us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`);

function median(rounds) {
  const ok = rounds.filter((r) => !r.error);
  return ok.length ? middleBy(ok, (r) => r.reqPerSec) : null;
}

function table(summary) {
  const rows = [];
  const base = summary.find((s) => s.server === BASELINE)?.median;
  for (const { server, median: m, rounds } of summary) {
    if (!m) {
      rows.push([server, 'failed']);
      continue;
    }
    const spread =
      rounds.length > 1
        ? ` (${fmtK(Math.min(...rounds.map((r) => r.reqPerSec)))}–${fmtK(Math.max(...rounds.map((r) => r.reqPerSec)))})`
        : '';
    rows.push([
      server,
      `${fmtK(m.reqPerSec)}${spread}`,
      fmtMs(m.latencyAvgUs),
      fmtMs(m.p50us),
      fmtMs(m.p99us),
      `${fmt(m.serverCpuPct, 0)}%`,
      fmt(m.cpuUsPerReq, 1),
      ratio(m.reqPerSec, base?.reqPerSec),
      ratio(m.cpuUsPerReq, base?.cpuUsPerReq),
    ]);
  }
  return markdownTable(
    ['server', 'req/s', 'latency avg', 'p50', 'p99', 'server CPU', 'server CPU µs/req', 'req/s vs node-http', 'CPU/req vs node-http'],
    rows,
  );
}

function version(argv) {
  try {
    const out = execFileSync('sh', ['-c', `${argv} 2>&1`], { encoding: 'utf8' });
    return out.split('\n')[0].trim();
  } catch (e) {
    return String(e.stdout ?? e.message)
      .split('\n')[0]
      .trim();
  }
}

async function main() {
  const opts = parseOptions();
  if (!which('wrk')) fail('wrk is not installed (command -v wrk found nothing; e.g. apt-get install -y wrk)');
  const clkTck = clockTicksPerSecond();
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    kernel: kernelRelease(),
    cpus: os.cpus().length,
    wrk: version('wrk -v'),
    nginx: which('nginx') ? version('nginx -v') : null,
    command: commandLine(),
    ...opts,
  };
  console.log(`date:    ${meta.date}`);
  console.log(`node:    ${meta.node}, kernel ${meta.kernel}, ${meta.cpus} CPUs`);
  console.log(`wrk:     ${meta.wrk}`);
  if (meta.nginx) console.log(`nginx:   ${meta.nginx}`);
  console.log(`command: ${meta.command}`);
  console.log(
    `load:    wrk -t${opts.threads} -c${opts.conns} -d${opts.duration}s --latency (after a 1 s warmup run), GET /, ` +
      `${opts.rounds} round${opts.rounds > 1 ? 's' : ''}\n`,
  );

  const skipped = [];
  const servers = opts.servers.filter((name) => {
    const why = SERVERS[name].unavailable();
    if (why) {
      console.error(`${name}: skipped, ${why}`);
      skipped.push({ server: name, reason: why });
    }
    return !why;
  });
  const results = Object.fromEntries(servers.map((s) => [s, []]));
  for (let round = 1; round <= opts.rounds; round++) {
    for (const name of servers) {
      process.stderr.write(`${opts.rounds > 1 ? `round ${round}: ` : ''}${name} ... `);
      try {
        const r = await runCell(name, opts, clkTck);
        results[name].push(r);
        console.error(
          `${fmtK(r.reqPerSec)} req/s, p99 ${fmtMs(r.p99us)}, server CPU ${fmt(r.serverCpuPct, 0)}% ` +
            `(${fmt(r.cpuUsPerReq, 1)} µs/req), wrk CPU ${fmt(r.wrkCpuPct, 0)}%${r.error ? `  !! ${r.error}` : ''}`,
        );
      } catch (err) {
        results[name].push({ error: err.message });
        console.error(`FAILED\n  ${err.message}`);
      }
    }
  }

  const summary = servers.map((server) => ({ server, median: median(results[server]), rounds: results[server].filter((r) => !r.error) }));
  console.log(table(summary));
  for (const s of skipped) console.log(`\n${s.server}: skipped, ${s.reason}`);
  for (const [name, rs] of Object.entries(results)) {
    for (const r of rs) if (r.error) console.log(`\n${name}: ${r.error.split('\n')[0]}`);
  }
  const clientBound = summary.filter((s) => s.median && s.median.wrkCpuPct >= 90).map((s) => s.server);
  if (clientBound.length) {
    console.log(
      `\nwrk used ≥90% of a core against: ${clientBound.join(', ')} — there req/s is bounded by the client; ` +
        'compare server CPU µs/req.',
    );
  }

  writeResults('http', meta.date, { meta, skipped, results });
  if (Object.values(results).some((rs) => rs.some((r) => r.error))) process.exitCode = 1;
}

// Ctrl-C mid-run must not leave a server or wrk behind.
onInterrupt(() => {
  for (const server of liveServers) {
    for (const pid of server.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    server.cleanup?.();
  }
  killChildren();
});

await main();
