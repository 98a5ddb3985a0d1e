#!/usr/bin/env node
// Wait benchmark: what one poll.wait costs the server with N registered idle
// connections and one active one, per backend, through the whole host.
//
// The classic select/poll-vs-epoll table: poll(2) hands the kernel every
// registered descriptor on every call (O(N)), epoll only the ready ones (O(1)
// in N). Here the server is `wasmux run dist/plugins/echo.wasm --backend B`;
// N connections are opened, each echoes one byte (so the server has accepted,
// registered and drained it) and then sits idle; one more connection, the C
// load generator's, does 64-byte ping-pong. Each message costs the server one
// wait returning one event, one recv and one send, so the server's CPU per
// message is a constant plus the wait's cost in N. See bench/README.md.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  ROOT,
  cli,
  clockTicksPerSecond,
  compileIfStale,
  cpuTicks,
  kernelRelease,
  launchAnnounced,
  onInterrupt,
  runMeasured,
  stopServer,
  withTimeout,
} from './lib/process.mjs';
import { markdownTable, middleBy, printHeader, writeResults } from './lib/report.mjs';

const CLI = 'dist/host/cli/main.js';
const PLUGIN = 'dist/plugins/echo.wasm';
const WARMUP_MS = 500;
const SETUP_TIMEOUT_MS = 60000;
// The server holds N + a few descriptors, this runner N: both stay under the
// 20,000 per-process hard limit with room to spare.
const MAX_IDLE = 15000;
// Idle connections come from 127.0.0.2..5 (the active one from 127.0.0.1), so
// no single source address runs short of ephemeral ports across runs.
const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const CONNECT_CONCURRENCY = 256;
// With one message in flight, server and load generator take turns. Left to
// the scheduler they land on one core or on two from run to run, and a
// cross-core wake-up (an IPI, an idle-state exit) costs the server two to
// three times a same-core switch: the figures jumped between ~8 and ~25 µs.
// Both are pinned to the same core (taskset, where present), so that every
// cell measures the same path and the wait's own cost is not drowned.
const TASKSET = ['/usr/bin/taskset', '/bin/taskset'].find((p) => fs.existsSync(p));
const CPU = '1';
const pinned = (argv) => (TASKSET ? [TASKSET, '-c', CPU, ...argv] : argv);

const USAGE = `usage: node bench/wait.mjs [options]      (or: npm run bench:wait -- [options])

  --backends LIST    comma-separated (default: every backend available here)
  --idle LIST        idle connection counts (default: 10,100,1000,10000; max ${MAX_IDLE})
  --duration-ms N    measured window per run after a ${WARMUP_MS} ms warmup (default 2000)
  --repeat N         runs per cell, each with a fresh server; the median is reported (default 3)
  --quick            1000 ms measured window, 1 run per cell
  --help             this text

Each run of a (backend, N) cell gets a fresh server process. Prints a markdown table, the
cost ratio of the largest N to the smallest per backend, and writes the results
to bench/out/wait-<timestamp>.json.`;

const { fail, flags } = cli('wait', USAGE);

async function parseOptions() {
  const values = flags({
    backends: { type: 'string' },
    idle: { type: 'string' },
    'duration-ms': { type: 'string' },
    repeat: { type: 'string' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  for (const f of [CLI, PLUGIN]) if (!fs.existsSync(path.join(ROOT, f))) fail(`missing ${f}: run npm run build first`);
  const { availableBackends, BACKEND_NAMES } = await import(path.join(ROOT, 'dist/host/index.js'));
  const available = availableBackends();
  const backends = (values.backends ?? available.join(',')).split(',').filter(Boolean);
  for (const b of backends) {
    if (!BACKEND_NAMES.includes(b)) fail(`unknown backend '${b}'; known: ${BACKEND_NAMES.join(', ')}`);
    if (!available.includes(b)) fail(`backend '${b}' is not available here (available: ${available.join(', ')})`);
  }
  const idle = (values.idle ?? '10,100,1000,10000')
    .split(',')
    .filter(Boolean)
    .map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 0 || n > MAX_IDLE) fail(`--idle wants 0..${MAX_IDLE}, got '${s}'`);
      return n;
    });
  const durationMs = Number(values['duration-ms'] ?? (values.quick ? 1000 : 2000));
  if (!Number.isInteger(durationMs) || durationMs < 100) fail(`--duration-ms wants an integer >= 100`);
  const repeat = Number(values.repeat ?? (values.quick ? 1 : 3));
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 20) fail(`--repeat wants 1..20`);
  return { backends, idle, durationMs, repeat };
}

async function startServer(backend) {
  // The policy's defaults would cap connections at 1,024 and shut idle ones
  // after 60 s: lift both, the idle connections are the point here.
  const argv = [
    process.execPath,
    CLI,
    'run',
    PLUGIN,
    '--listen',
    '127.0.0.1:0',
    '--max-connections',
    String(MAX_IDLE + 16),
    '--idle-timeout',
    '0',
    '--backend',
    backend,
  ];
  const { server, match, ...r } = await launchAnnounced(pinned(argv), /listening on 127\.0\.0\.1:(\d+) \(backend (\w+)/);
  if (match) Object.assign(r, { port: Number(match[1]), backend: match[2] });
  if (r.port && r.backend === backend) return { ...server, port: r.port };
  server.proc.kill('SIGKILL');
  throw new Error(`server on ${backend} did not start: ${JSON.stringify(r)}\n  ${server.stderrTail.join('\n  ')}`);
}

// Opens n connections that each echo one byte, then stay open and silent.
async function openIdle(port, n) {
  const socks = [];
  let next = 0;
  const one = async () => {
    const i = next++;
    const sock = net.connect({ port, host: '127.0.0.1', localAddress: SOURCES[i % SOURCES.length] });
    socks.push(sock);
    await new Promise((resolve, reject) => {
      sock.once('error', reject);
      sock.once('connect', () => sock.write('x'));
      sock.once('data', () => {
        sock.off('error', reject);
        sock.on('error', () => {});
        resolve();
      });
    });
  };
  const lane = async () => {
    while (next < n) await one();
  };
  try {
    await withTimeout(Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, n) }, lane)), SETUP_TIMEOUT_MS, () =>
      Promise.reject(new Error(`${n} idle connections were not all set up within ${SETUP_TIMEOUT_MS} ms`)),
    );
  } catch (err) {
    for (const s of socks) s.destroy();
    throw err;
  }
  return socks;
}

async function runCell(loadgenBin, backend, idle, durationMs, clkTck) {
  const server = await startServer(backend);
  let socks = [];
  try {
    socks = await openIdle(server.port, idle);
    const sample = () => ({ server: cpuTicks(server.proc.pid), ns: process.hrtime.bigint() });
    // A sampling error means the server is gone (its /proc entry with it): the
    // missing samples make it a failed cell below.
    const {
      child: loadgen,
      exit,
      start,
      end,
      report,
    } = await runMeasured(
      pinned([
        loadgenBin,
        '--host',
        '127.0.0.1',
        '--port',
        String(server.port),
        '--conns',
        '1',
        '--size',
        '64',
        '--duration-ms',
        String(durationMs),
        '--warmup-ms',
        String(WARMUP_MS),
      ]),
      sample,
      WARMUP_MS + durationMs + 30000,
      'SIGKILL (timeout)',
    );
    if (!report || !start || report.errors) {
      throw new Error(`loadgen failed (${JSON.stringify(exit)}, errors ${report?.errors})\n  ${loadgen.stderrTail.join('\n  ')}`);
    }
    const windowSec = Number(end.ns - start.ns) / 1e9;
    const serverCpuSec = (end.server - start.server) / clkTck;
    return {
      backend,
      idle,
      messages: report.messages,
      msgsPerSec: report.msgsPerSec,
      p50us: report.p50us,
      serverCpuPct: (100 * serverCpuSec) / windowSec,
      // CPU rate over the sampled window over loadgen's message rate (see bench/README.md).
      cpuUsPerMsg: (serverCpuSec / windowSec / report.msgsPerSec) * 1e6,
    };
  } finally {
    for (const s of socks) s.destroy();
    const { status: exit } = await stopServer(server);
    if (exit.code !== 0) console.error(`  (server on ${backend} exited with ${exit.code ?? exit.signal})`);
  }
}

const fmtN = (n) => n.toLocaleString('en-US');

function table(cells, backends, idle) {
  const rows = [];
  for (const b of backends) {
    const base = cells.find((c) => c.backend === b && c.idle === idle[0] && !c.error);
    for (const n of idle) {
      const c = cells.find((x) => x.backend === b && x.idle === n);
      if (!c || c.error) {
        rows.push([b, fmtN(n), 'failed']);
        continue;
      }
      const ratio = base ? (c.cpuUsPerMsg / base.cpuUsPerMsg).toFixed(2) : '–';
      const spread = `${c.minCpuUsPerMsg.toFixed(2)}–${c.maxCpuUsPerMsg.toFixed(2)}`;
      rows.push([b, fmtN(n), fmtN(Math.round(c.msgsPerSec)), c.p50us.toFixed(0), c.cpuUsPerMsg.toFixed(2), spread, ratio]);
    }
  }
  return markdownTable(
    [
      'backend',
      'idle conns',
      'msgs/s',
      'p50 µs',
      'server CPU µs/msg (one wait each)',
      'min–max of runs',
      `× its cost at N = ${fmtN(idle[0])}`,
    ],
    rows,
  );
}

// The run with the median CPU per message stands for the cell; the spread is kept.
function median(runs) {
  const cpu = runs.map((r) => r.cpuUsPerMsg);
  return {
    ...middleBy(runs, (r) => r.cpuUsPerMsg),
    minCpuUsPerMsg: Math.min(...cpu),
    maxCpuUsPerMsg: Math.max(...cpu),
    runs,
  };
}

async function main() {
  const { backends, idle, durationMs, repeat } = await parseOptions();
  const loadgenBin = compileIfStale('loadgen', fail);
  const clkTck = clockTicksPerSecond();
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    kernel: kernelRelease(),
    command: ['node', ...process.argv.slice(1).map((a) => path.relative(ROOT, a) || a)].join(' '),
    clkTck,
    pinnedToCpu: TASKSET ? Number(CPU) : null,
    warmupMs: WARMUP_MS,
    durationMs,
    repeat,
  };
  printHeader(meta);
  console.log(
    `window:  ${WARMUP_MS} ms warmup + ${durationMs} ms measured, 1 active connection (64-byte ping-pong), ` +
      `median of ${repeat} run${repeat === 1 ? '' : 's'} per cell\n`,
  );

  const cells = [];
  for (const b of backends) {
    for (const n of idle) {
      process.stderr.write(`${b} with ${fmtN(n)} idle ...`);
      try {
        const runs = [];
        for (let r = 0; r < repeat; r++) {
          runs.push(await runCell(loadgenBin, b, n, durationMs, clkTck));
          process.stderr.write(` ${runs[r].cpuUsPerMsg.toFixed(2)}`);
        }
        const c = median(runs);
        cells.push(c);
        console.error(` µs CPU/msg; median ${c.cpuUsPerMsg.toFixed(2)}`);
      } catch (err) {
        cells.push({ backend: b, idle: n, error: err.message });
        console.error(`FAILED\n  ${err.message}`);
      }
    }
  }

  console.log(table(cells, backends, idle));
  const lo = idle[0];
  const hi = idle[idle.length - 1];
  console.log('');
  for (const b of backends) {
    const a = cells.find((c) => c.backend === b && c.idle === lo && !c.error);
    const z = cells.find((c) => c.backend === b && c.idle === hi && !c.error);
    if (a && z) console.log(`${b}: cost at ${fmtN(hi)} idle = ${(z.cpuUsPerMsg / a.cpuUsPerMsg).toFixed(2)} × its cost at ${fmtN(lo)}`);
  }

  writeResults('wait', meta.date, { meta, results: cells });
  if (cells.some((c) => c.error)) process.exitCode = 1;
}

onInterrupt();

await main();
