#!/usr/bin/env node
// RESP benchmark: the resp plugin in wasmux against Debian's redis-server, in one
// run on one machine, both driven by redis-benchmark with the same settings.
//
// Each command is measured in its own redis-benchmark run, alternating between the
// two servers round after round (the order flips every round), so that the load of
// a shared 2-core machine falls on both alike; the table shows each server's median
// round. Besides requests per second, the servers' own CPU time per request is
// read from /proc (all threads), which moves much less with the machine's load.
// See bench/README.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
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
  freePort,
  kernelRelease,
  killChildren,
  launch,
  launchAnnounced,
  onInterrupt,
  sleep,
  stopServer,
  which,
  withTimeout,
} from './lib/process.mjs';
import { markdownTable, writeResults } from './lib/report.mjs';

const HOST = '127.0.0.1';
const WASMUX_CLI = 'dist/host/cli/main.js';
const WASMUX_PLUGIN = 'dist/plugins/resp.wasm';
const SERVERS = ['wasmux', 'redis-server'];
const TARGET_RATIO = 0.7;

const USAGE = `usage: node bench/resp.mjs [options]      (or: npm run bench:resp -- [options])

  --tests LIST       redis-benchmark tests, comma-separated (default: set,get)
  --requests N       requests per run, redis-benchmark -n (default 200000)
  --clients N        connections, -c (default 50)
  --pipeline N       requests in flight per connection, -P (default 16)
  --rounds N         runs per (server, test), alternating (default 5; the median is shown)
  --quick            --requests 100000 --rounds 3
  --help             this text

Needs redis-benchmark and redis-server on the PATH (Debian: apt-get install -y
redis-tools redis-server), Linux (/proc), and a built wasmux (npm run build).
Prints a markdown table and writes bench/out/resp-<timestamp>.json.`;

const { fail, flags } = cli('resp', USAGE);

function positive(text, what) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) fail(`${what} wants a positive integer, got '${text}'`);
  return n;
}

function parseOptions() {
  const values = flags({
    tests: { type: 'string', default: 'set,get' },
    requests: { type: 'string' },
    clients: { type: 'string', default: '50' },
    pipeline: { type: 'string', default: '16' },
    rounds: { type: 'string' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  const tests = values.tests
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  if (tests.length === 0) fail('--tests is empty');
  return {
    tests,
    requests: positive(values.requests ?? (values.quick ? '100000' : '200000'), '--requests'),
    clients: positive(values.clients, '--clients'),
    pipeline: positive(values.pipeline, '--pipeline'),
    rounds: positive(values.rounds ?? (values.quick ? '3' : '5'), '--rounds'),
  };
}

function need(program) {
  if (!which(program)) {
    fail(`${program} is not on the PATH (Debian: apt-get install -y ${program === 'redis-server' ? 'redis-server' : 'redis-tools'})`);
  }
}

// redis-server's directories, removed after it stops, and on Ctrl-C.
const dirs = new Set();

function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, HOST, () => s.write('PING\r\n'));
    let got = '';
    s.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) {
        s.destroy();
        resolve(got === '+PONG\r\n');
      }
    });
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function startWasmux() {
  for (const f of [WASMUX_CLI, WASMUX_PLUGIN]) {
    if (!fs.existsSync(path.join(ROOT, f))) fail(`${f} is missing (npm run build)`);
  }
  const { server, match } = await launchAnnounced([process.execPath, WASMUX_CLI, 'run', WASMUX_PLUGIN, '--listen', `${HOST}:0`]);
  const port = match ? Number(match[2]) : null;
  if (!port) {
    await stopServer(server);
    fail(`wasmux did not start:\n  ${server.stderrTail.join('\n  ')}`);
  }
  return { ...server, port };
}

// Debian's redis-server on a free loopback port, in a directory of its own,
// with persistence off (as the wasmux store has none).
async function startRedis() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmux-bench-redis-'));
  dirs.add(dir);
  const port = await freePort(HOST);
  const server = launch([
    'redis-server',
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ]);
  server.cleanup = () => {
    fs.rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await ping(port))) {
    if (Date.now() > deadline || server.proc.exitCode !== null) {
      await stopServer(server);
      fail(`redis-server did not start:\n  ${server.stderrTail.join('\n  ')}`);
    }
    await sleep(50);
  }
  return { ...server, port };
}

// One redis-benchmark run of one test; its rate and the server's CPU per request.
async function runOne(server, test, opts, clkTck) {
  const args = [
    '-h',
    HOST,
    '-p',
    String(server.port),
    '-q',
    '-n',
    String(opts.requests),
    '-c',
    String(opts.clients),
    '-P',
    String(opts.pipeline),
    '-t',
    test,
  ];
  let stdout = '';
  const ticks0 = cpuTicks(server.proc.pid);
  const t0 = process.hrtime.bigint();
  const bench = launch(['redis-benchmark', ...args], (line, stream) => {
    if (stream === 'stdout') stdout += `${line}\n`;
  });
  const exit = await withTimeout(bench.exited, 300_000, () => {
    bench.proc.kill('SIGKILL');
    return bench.exited;
  });
  const wallSec = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuSec = (cpuTicks(server.proc.pid) - ticks0) / clkTck;
  // -q rewrites a progress line with \r and ends the test with its rate.
  const rates = [...stdout.matchAll(/([A-Z]+(?: \(10 keys\))?): ([\d.]+) requests per second/g)];
  if (exit.code !== 0 || bench.stderrTail.length > 0 || rates.length !== 1) {
    throw new Error(`redis-benchmark ${args.join(' ')} failed (exit ${exit.code ?? exit.signal}):\n  ${bench.stderrTail.join('\n  ')}`);
  }
  const rps = Number(rates[0][2]);
  return { rps, cpuUsPerRequest: (cpuSec / opts.requests) * 1e6, serverCpuPct: (100 * cpuSec) / wallSec, wallSec };
}

const median = (xs) => {
  const s = xs.toSorted((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmtK = (n) => `${(n / 1000).toFixed(0)}k`;

function table(results, tests) {
  const rows = [];
  for (const test of tests) {
    const w = results.filter((r) => r.server === 'wasmux' && r.test === test);
    const r = results.filter((r) => r.server === 'redis-server' && r.test === test);
    const wr = median(w.map((x) => x.rps));
    const rr = median(r.map((x) => x.rps));
    const wc = median(w.map((x) => x.cpuUsPerRequest));
    const rc = median(r.map((x) => x.cpuUsPerRequest));
    rows.push([test.toUpperCase(), fmtK(wr), fmtK(rr), (wr / rr).toFixed(2), wc.toFixed(2), rc.toFixed(2), (wc / rc).toFixed(2)]);
  }
  return markdownTable(
    ['command', 'wasmux ops/s', 'redis-server ops/s', 'ratio', 'wasmux CPU µs/op', 'redis-server CPU µs/op', 'CPU ratio'],
    rows,
  );
}

async function main() {
  const opts = parseOptions();
  need('redis-benchmark');
  need('redis-server');
  const clkTck = clockTicksPerSecond();
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    kernel: kernelRelease(),
    redis: execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim(),
    cpus: os.cpus().length,
    command: commandLine(),
    benchmark: `redis-benchmark -q -n ${opts.requests} -c ${opts.clients} -P ${opts.pipeline} -t <test>`,
    ...opts,
  };
  console.log(`date:      ${meta.date}`);
  console.log(`node:      ${meta.node}   kernel: ${meta.kernel}   cpus: ${meta.cpus}`);
  console.log(`redis:     ${meta.redis}`);
  console.log(`command:   ${meta.command}`);
  console.log(`each run:  ${meta.benchmark}, ${opts.rounds} rounds per server and test, alternating\n`);

  const servers = { wasmux: await startWasmux(), 'redis-server': await startRedis() };
  const results = [];
  let failed = null;
  try {
    // One unrecorded run of every test first: V8 compiles the plugin's hot
    // functions again, optimized, once they have run a while.
    for (const name of SERVERS) {
      for (const test of opts.tests) {
        process.stderr.write(`warmup ${test} ${name} ... `);
        try {
          const r = await runOne(servers[name], test, opts, clkTck);
          console.error(`${fmtK(r.rps)} ops/s`);
        } catch (err) {
          console.error('FAILED');
          failed = err;
        }
      }
    }
    for (let round = 0; round < opts.rounds && !failed; round++) {
      const order = round % 2 === 0 ? SERVERS : SERVERS.toReversed();
      for (const test of opts.tests) {
        for (const name of order) {
          process.stderr.write(`round ${round + 1}/${opts.rounds} ${test} ${name} ... `);
          try {
            const r = await runOne(servers[name], test, opts, clkTck);
            results.push({ round: round + 1, test, server: name, ...r });
            console.error(`${fmtK(r.rps)} ops/s, ${r.cpuUsPerRequest.toFixed(2)} µs CPU/op`);
          } catch (err) {
            console.error('FAILED');
            failed = err;
            break;
          }
        }
        if (failed) break;
      }
    }
  } finally {
    await Promise.all(Object.values(servers).map(stopServer));
  }
  if (failed) {
    console.error(failed.message);
    process.exitCode = 1;
    return;
  }

  console.log(table(results, opts.tests));
  const below = opts.tests.filter((t) => {
    const w = median(results.filter((r) => r.server === 'wasmux' && r.test === t).map((r) => r.rps));
    const r = median(results.filter((r) => r.server === 'redis-server' && r.test === t).map((r) => r.rps));
    return w / r < TARGET_RATIO;
  });
  if (below.length) console.log(`\nbelow the ${TARGET_RATIO}x target: ${below.join(', ')}`);

  writeResults('resp', meta.date, { meta, results });
}

// Ctrl-C mid-run must not leave a server or redis-benchmark behind.
// redis-server's directory is removed as well.
onInterrupt(() => {
  killChildren();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

await main();
