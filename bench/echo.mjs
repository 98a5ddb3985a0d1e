#!/usr/bin/env node
// Echo benchmark: wasmux against its two anchors, Node `net` (the baseline a user
// would otherwise reach for) and a C epoll server (the practical limit), in one run
// on one machine, driven by the same C ping-pong load generator.
//
// The headline figure is server CPU per message, not msgs/s: on a 2-core machine
// the single-threaded load generator usually saturates its core before a fast
// server does, so throughput ends up measuring the client. See bench/README.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BIN,
  ROOT,
  STOP_TIMEOUT_MS,
  cli,
  clockTicksPerSecond,
  commandLine,
  compileIfStale,
  cpuTicks,
  describeExit,
  explain,
  kernelRelease,
  onInterrupt,
  runMeasured,
  startAnnounced,
  stopServer,
} from './lib/process.mjs';
import { fmt, markdownTable, printHeader, ratio, writeResults } from './lib/report.mjs';

const HOST = '127.0.0.1';
const WARMUP_MS = 1000;
// loadgen may spend up to 10 s connecting before its warmup starts (see loadgen.c).
const LOADGEN_SLACK_MS = 10000 + 15000;
// Each connection is one fd in the server and one in loadgen; stay far below the
// 20,000 per-process hard limit so the benchmark never measures fd exhaustion.
const MAX_CONNS = 10000;
const BASELINE = 'node-net';
const IGNORED_SIGTERM = `ignored SIGTERM for ${STOP_TIMEOUT_MS / 1000} s and needed SIGKILL`;

const C_PROGRAMS = ['loadgen', 'echo-epoll'];
const WASMUX_CLI = 'dist/host/cli/main.js';
const WASMUX_PLUGIN = 'dist/plugins/echo.wasm';

// wasmux-recorded: the same server under `--record` (docs/trace-format.md), its trace in the
// temporary directory, bounded far above what a run writes (a bound reached would stop the
// recording and flatter the row), removed after each run; its size is reported per message.
const TRACE_FILE = path.join(os.tmpdir(), `wasmux-bench-echo-${process.pid}.trace`);
const TRACE_MAX_BYTES = 64 * 1024 ** 3;

const SERVERS = {
  wasmux: {
    missing: () => [WASMUX_CLI, WASMUX_PLUGIN].filter((f) => !fs.existsSync(path.join(ROOT, f))),
    argv: () => [process.execPath, WASMUX_CLI, 'run', WASMUX_PLUGIN, '--listen', `${HOST}:0`],
  },
  'wasmux-recorded': {
    missing: () => [WASMUX_CLI, WASMUX_PLUGIN].filter((f) => !fs.existsSync(path.join(ROOT, f))),
    argv: () => [
      process.execPath,
      WASMUX_CLI,
      'run',
      WASMUX_PLUGIN,
      '--listen',
      `${HOST}:0`,
      '--record',
      TRACE_FILE,
      '--record-max-bytes',
      String(TRACE_MAX_BYTES),
    ],
    after: () => {
      const bytes = fs.existsSync(TRACE_FILE) ? fs.statSync(TRACE_FILE).size : null;
      fs.rmSync(TRACE_FILE, { force: true });
      return { traceBytes: bytes };
    },
  },
  'node-net': {
    missing: () => [],
    argv: () => [process.execPath, 'bench/servers/node-net-echo.mjs', '--host', HOST, '--port', '0'],
  },
  'c-epoll': {
    missing: () => [],
    argv: () => [path.join(BIN, 'echo-epoll'), '--host', HOST, '--port', '0'],
  },
};

const USAGE = `usage: node bench/echo.mjs [options]      (or: npm run bench:echo -- [options])

  --servers LIST     comma-separated, from ${Object.keys(SERVERS).join(',')} (default: all)
  --conns LIST       connection counts, comma-separated (default: 100,1000; max ${MAX_CONNS})
  --duration-ms N    measured window per run after a ${WARMUP_MS} ms warmup (default 5000,
                     or $BENCH_DURATION_MS)
  --quick            1000 ms measured window
  --help             this text

Each (server, conns) pair gets a fresh server process. Prints a markdown table and
writes the results to bench/out/echo-<timestamp>.json.`;

const { fail, flags, list: parseList } = cli('echo', USAGE);

function parseOptions() {
  const values = flags({
    servers: { type: 'string' },
    conns: { type: 'string' },
    'duration-ms': { type: 'string' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  const servers = parseList(values.servers ?? Object.keys(SERVERS).join(','), '--servers', (s) => {
    if (!(s in SERVERS)) fail(`unknown server '${s}'; known: ${Object.keys(SERVERS).join(', ')}`);
    return s;
  });
  const conns = parseList(values.conns ?? '100,1000', '--conns', (s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1 || n > MAX_CONNS) fail(`--conns wants 1..${MAX_CONNS}, got '${s}'`);
    return n;
  });
  // The command line beats the environment: a flag typed now is the more deliberate choice.
  const durationText = values['duration-ms'] ?? (values.quick ? '1000' : (process.env.BENCH_DURATION_MS ?? '5000'));
  const durationMs = Number(durationText);
  if (!Number.isInteger(durationMs) || durationMs < 100) {
    fail(`the duration wants an integer >= 100 ms, got '${durationText}'`);
  }
  return { servers, conns, durationMs };
}

const startServer = (name) => startAnnounced(name, SERVERS[name].argv());

// Runs one loadgen against a listening server and measures the server's CPU over
// the window loadgen counts messages in: from its "measure-start" line to its
// JSON line, which it prints before closing any connection.
async function runLoad(server, conns, durationMs, clkTck) {
  const args = [
    '--host',
    HOST,
    '--port',
    String(server.port),
    '--conns',
    String(conns),
    '--size',
    '64',
    '--duration-ms',
    String(durationMs),
    '--warmup-ms',
    String(WARMUP_MS),
  ];
  const sample = (loadgen) => ({
    server: cpuTicks(server.proc.pid),
    loadgen: cpuTicks(loadgen.proc.pid),
    ns: process.hrtime.bigint(),
  });
  const {
    child: loadgen,
    exit,
    start,
    end,
    report,
    lineError,
  } = await runMeasured([path.join(BIN, 'loadgen'), ...args], sample, WARMUP_MS + durationMs + LOADGEN_SLACK_MS);
  if (lineError) throw new Error(explain(`measuring failed: ${lineError.message}`, loadgen));
  if (!report || !start) throw new Error(explain(`loadgen failed (${describeExit(exit)})`, loadgen));
  const windowSec = Number(end.ns - start.ns) / 1e9;
  const serverCpuSec = (end.server - start.server) / clkTck;
  // CPU rate over our sampled window divided by loadgen's message rate: the two
  // windows differ by pipe latency, and a rate does not care about their length.
  const cpuUsPerMsg = report.messages > 0 ? (serverCpuSec / windowSec / report.msgsPerSec) * 1e6 : null;
  return {
    ...report,
    windowSec,
    serverCpuSec,
    serverCpuPct: (100 * serverCpuSec) / windowSec,
    loadgenCpuPct: (100 * (end.loadgen - start.loadgen)) / clkTck / windowSec,
    cpuUsPerMsg,
    // A wrong echo or a lost connection makes the run's numbers meaningless;
    // they stay in the JSON for diagnosis but the table shows the cell as failed.
    error: report.errors ? explain(`${report.errors} errors (wrong echoes or lost connections)`, loadgen) : undefined,
  };
}

async function runCell(name, conns, durationMs, clkTck) {
  const server = await startServer(name);
  let result, error;
  try {
    result = await runLoad(server, conns, durationMs, clkTck);
  } catch (err) {
    error = err;
  }
  const stop = await stopServer(server);
  const extra = SERVERS[name].after?.() ?? {};
  if (error) {
    if (stop.sigkill) error.message += `\n  (the server also ${IGNORED_SIGTERM})`;
    throw error;
  }
  return { ...result, ...extra, serverExit: stop.exit, serverNeededSigkill: stop.sigkill };
}

const fmtK = (n) => (n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));

function table(cells, serverOrder) {
  const rows = [];
  // Grouped by connection count so each row sits next to the baseline it is divided by.
  const sorted = cells.toSorted((a, b) => a.conns - b.conns || serverOrder.indexOf(a.server) - serverOrder.indexOf(b.server));
  for (const c of sorted) {
    if (c.error) {
      rows.push([c.server, c.conns, 'failed']);
      continue;
    }
    const base = cells.find((b) => b.server === BASELINE && b.conns === c.conns && !b.error);
    rows.push([
      c.server,
      c.conns,
      fmtK(c.msgsPerSec),
      fmt(c.p50us, 0),
      fmt(c.p99us, 0),
      fmt(c.cpuUsPerMsg, 2),
      ratio(c.cpuUsPerMsg, base?.cpuUsPerMsg),
      ratio(c.msgsPerSec, base?.msgsPerSec),
    ]);
  }
  return markdownTable(
    ['server', 'conns', 'msgs/s', 'p50 µs', 'p99 µs', 'server CPU µs/msg', 'CPU/msg ratio vs node-net', 'msgs/s ratio vs node-net'],
    rows,
  );
}

async function main() {
  const { servers, conns, durationMs } = parseOptions();
  for (const name of C_PROGRAMS) compileIfStale(name, fail);

  const clkTck = clockTicksPerSecond();
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    kernel: kernelRelease(),
    command: commandLine(),
    clkTck,
    warmupMs: WARMUP_MS,
    durationMs,
    messageSize: 64,
  };
  printHeader(meta);
  console.log(`window:  ${WARMUP_MS} ms warmup + ${durationMs} ms measured, 64-byte messages\n`);

  const cells = [];
  const skipped = [];
  for (const name of servers) {
    const missing = SERVERS[name].missing();
    if (missing.length) {
      const reason = `missing ${missing.join(', ')} (build the host and the echo plugin first)`;
      console.error(`${name}: skipped, ${reason}`);
      skipped.push({ server: name, reason });
      continue;
    }
    for (const n of conns) {
      process.stderr.write(`${name} × ${n} conns ... `);
      try {
        const r = await runCell(name, n, durationMs, clkTck);
        cells.push({ server: name, ...r });
        console.error(r.error ? `FAILED\n  ${r.error}` : `${fmtK(r.msgsPerSec)} msgs/s, ${fmt(r.cpuUsPerMsg, 2)} µs CPU/msg`);
        if (r.serverNeededSigkill) console.error(`  the server ${IGNORED_SIGTERM}`);
      } catch (err) {
        cells.push({ server: name, conns: n, error: err.message });
        console.error(`FAILED\n  ${err.message}`);
      }
    }
  }

  console.log(table(cells, servers));
  for (const s of skipped) console.log(`\n${s.server}: skipped, ${s.reason}`);
  for (const c of cells.filter((c) => c.error)) console.log(`\n${c.server} × ${c.conns}: ${c.error}`);
  for (const c of cells.filter((c) => c.serverNeededSigkill)) console.log(`\n${c.server} × ${c.conns}: ${IGNORED_SIGTERM}`);
  // What recording costs: the recorded row's CPU per message over the unrecorded one's, same run.
  for (const r of cells.filter((c) => c.server === 'wasmux-recorded' && !c.error)) {
    const plain = cells.find((c) => c.server === 'wasmux' && c.conns === r.conns && !c.error);
    if (!plain) continue;
    const size = r.traceBytes !== null ? `; its trace: ${fmt(r.traceBytes / 1048576, 1)} MiB for the whole run, warmup included` : '';
    console.log(
      `\nrecording overhead × ${r.conns} conns: ${ratio(r.cpuUsPerMsg, plain.cpuUsPerMsg)} the CPU/msg of unrecorded wasmux${size}`,
    );
  }
  const clientBound = cells.filter((c) => c.loadgenCpuPct >= 90);
  if (clientBound.length) {
    console.log(
      `\nloadgen used ≥90% of a core in: ${clientBound.map((c) => `${c.server}×${c.conns}`).join(', ')}` +
        ' — there msgs/s measures the client; compare CPU/msg.',
    );
  }

  writeResults('echo', meta.date, { meta, skipped, results: cells });

  if (cells.some((c) => c.error)) process.exitCode = 1;
}

// Ctrl-C mid-run must not leave a server or loadgen behind.
onInterrupt();

await main();
