#!/usr/bin/env node
// WebSocket broadcast benchmark: the wasmux ws chat-room plugin against a Node
// `ws` server doing the same broadcast, in one run on one machine, driven by
// the same load generator in its own process.
//
// N clients join the room; S of them send. Every message goes to the other
// N-1 clients, so one message sent is N-1 deliveries: the figure reported is
// deliveries per second, with the delivery latency (send to arrival at each
// receiver) at p50 and p99. See bench/README.md ("WebSocket broadcast").
//
// This file is both the runner (default) and the load generator
// (`--loadgen`, started by the runner as a separate process).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  ROOT,
  cli,
  clockTicksPerSecond,
  commandLine,
  cpuSplit,
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

const SELF = fileURLToPath(import.meta.url);
const HOST = '127.0.0.1';
const WARMUP_MS = 1000;
const CONNECT_TIMEOUT_MS = 10000;
const BASELINE = 'node-ws';
const MAX_CONNS = 1000;

const WASMUX_CLI = 'dist/host/cli/main.js';
const WASMUX_PLUGIN = 'dist/plugins/ws.wasm';

const SERVERS = {
  wasmux: {
    missing: () => [WASMUX_CLI, WASMUX_PLUGIN].filter((f) => !fs.existsSync(path.join(ROOT, f))),
    argv: () => [process.execPath, WASMUX_CLI, 'run', WASMUX_PLUGIN, '--listen', `${HOST}:0`],
  },
  'node-ws': {
    missing: () => [],
    argv: () => [process.execPath, 'bench/servers/node-ws-broadcast.mjs', '--host', HOST, '--port', '0'],
  },
  'node-ws-batched': {
    missing: () => [],
    argv: () => [process.execPath, 'bench/servers/node-ws-batched.mjs', '--host', HOST, '--port', '0'],
  },
};

const USAGE = `usage: node bench/ws.mjs [options]      (or: npm run bench:ws -- [options])

  --servers LIST     comma-separated, from ${Object.keys(SERVERS).join(',')} (default: all)
  --conns LIST       clients in the room, comma-separated (default: 50,100; max ${MAX_CONNS})
  --senders N        clients that send (default 4)
  --size N           message payload bytes, >= 14 (default 64)
  --window N         messages each sender may have in flight, i.e. not yet
                     delivered to every other client (default 32)
  --duration-ms N    measured window after a ${WARMUP_MS} ms warmup (default 5000, or $BENCH_DURATION_MS)
  --quick            1000 ms measured window
  --help             this text

Each (server, conns) pair gets a fresh server process and a fresh load generator
process. Prints a markdown table and writes bench/out/ws-<timestamp>.json.`;

const { fail, flags, list: parseList } = cli('ws', USAGE);

function intOption(text, name, min, max) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fail(`${name} wants an integer in ${min}..${max}, got '${text}'`);
  return n;
}

// ============================================================================
// Load generator
// ============================================================================
//
// Raw sockets and a minimal frame codec rather than the ws client: the load
// generator receives N-1 copies of every message, and must stay cheaper per
// delivery than the servers it measures.
//
// Message payload (little-endian): u16 sender, u32 sequence, f64 send time
// (performance.now(), ms), then padding. Frames are binary, masked with a
// fresh key as RFC 6455 requires of clients.
//
// Flow control: each sender keeps at most --window messages in flight; a
// message leaves the window when all N-1 receivers have it. Every delivery
// is checked: right sender range, the next sequence number from that sender
// for that receiver (exactly once, in order), else it counts as an error.

function loadgen(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      loadgen: { type: 'boolean' },
      port: { type: 'string' },
      conns: { type: 'string' },
      senders: { type: 'string' },
      size: { type: 'string' },
      window: { type: 'string' },
      'duration-ms': { type: 'string' },
      'warmup-ms': { type: 'string' },
    },
  });
  const port = intOption(values.port, '--port', 1, 65535);
  const N = intOption(values.conns, '--conns', 2, MAX_CONNS);
  const S = intOption(values.senders, '--senders', 1, N);
  const SIZE = intOption(values.size, '--size', 14, 65535);
  const W = intOption(values.window, '--window', 1, 100000);
  const durationMs = intOption(values['duration-ms'], '--duration-ms', 100, 3600000);
  const warmupMs = intOption(values['warmup-ms'], '--warmup-ms', 0, 60000);

  const conns = [];
  // received[s * W + (seq % W)]: receivers that have sender s's message seq.
  const received = new Int32Array(S * W);
  const sent = new Int32Array(S); // next sequence number per sender
  const done = new Int32Array(S); // messages of each sender delivered everywhere
  // expected[r * S + s]: the next sequence receiver r should get from sender s.
  const expected = new Int32Array(N * S);
  // Delivery latency histogram: 1 µs buckets up to 1 s, then one overflow bucket.
  const HIST = 1_000_000;
  const hist = new Uint32Array(HIST + 1);
  let measuring = false;
  let finished = false;
  let deliveries = 0;
  let messagesSent = 0;
  let errors = 0;
  const errorSamples = [];
  const error = (what) => {
    errors++;
    if (errorSamples.length < 5) errorSamples.push(what);
  };

  // Masked binary frames, header + key + payload, written in place.
  const headerLen = SIZE < 126 ? 2 : 4;
  let rng = 0x9e3779b9;
  function frameFor(s) {
    const f = Buffer.allocUnsafe(headerLen + 4 + SIZE);
    f[0] = 0x82;
    if (SIZE < 126) f[1] = 0x80 | SIZE;
    else {
      f[1] = 0x80 | 126;
      f.writeUInt16BE(SIZE, 2);
    }
    // xorshift32: a fresh masking key per frame, cheaply.
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    const k = headerLen;
    f.writeInt32LE(rng | 0, k);
    const p = k + 4;
    f.writeUInt16LE(s, p);
    f.writeUInt32LE(sent[s], p + 2);
    f.writeDoubleLE(performance.now(), p + 6);
    f.fill(0x2a, p + 14, p + SIZE);
    for (let i = 0; i < SIZE; i++) f[p + i] ^= f[k + (i & 3)];
    return f;
  }

  function pump(s) {
    if (finished) return;
    const c = conns[s];
    const bufs = [];
    while (sent[s] - done[s] < W) {
      bufs.push(frameFor(s));
      sent[s]++;
      if (measuring) messagesSent++;
    }
    if (bufs.length) c.sock.write(bufs.length === 1 ? bufs[0] : Buffer.concat(bufs));
  }

  function onMessage(r, buf, p, len, now) {
    if (len !== SIZE) return error(`receiver ${r}: ${len}-byte message`);
    const s = buf.readUInt16LE(p);
    const seq = buf.readUInt32LE(p + 2);
    if (s >= S || s === r) return error(`receiver ${r}: message from ${s}`);
    const e = r * S + s;
    if (seq !== expected[e]) return error(`receiver ${r}: from ${s} seq ${seq}, expected ${expected[e]}`);
    expected[e] = seq + 1;
    if (measuring) {
      deliveries++;
      const us = Math.round((now - buf.readDoubleLE(p + 6)) * 1000);
      hist[Math.min(us, HIST)]++;
    }
    // Out of the window once every other client has it.
    const slot = s * W + (seq % W);
    if (++received[slot] === N - 1) {
      received[slot] = 0;
      if (seq === done[s]) {
        done[s]++;
        while (done[s] < sent[s] && received[s * W + (done[s] % W)] === -1) {
          received[s * W + (done[s] % W)] = 0;
          done[s]++;
        }
        pump(s);
      } else {
        received[slot] = -1; // complete, but an earlier one is not: wait for it
      }
    }
  }

  function onFrames(c, chunk) {
    const now = performance.now(); // every frame in this read arrived together
    const buf = c.left ? Buffer.concat([c.left, chunk]) : chunk;
    const end = buf.length;
    let off = 0;
    while (end - off >= 2) {
      const b0 = buf[off];
      let len = buf[off + 1] & 0x7f;
      let hl = 2;
      if (len === 126) {
        if (end - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        hl = 4;
      } else if (len === 127) {
        if (end - off < 10) break;
        len = Number(buf.readBigUInt64BE(off + 2));
        hl = 10;
      }
      if (end - off < hl + len) break;
      const op = b0 & 0x0f;
      if (op === 2) onMessage(c.index, buf, off + hl, len, now);
      else if (op === 8) error(`receiver ${c.index}: closed by the server (${len >= 2 ? buf.readUInt16BE(off + hl) : 'no code'})`);
      else error(`receiver ${c.index}: opcode ${op}`);
      off += hl + len;
    }
    c.left = off < end ? buf.subarray(off) : null;
  }

  function connectOne(index) {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: HOST, port, noDelay: true });
      const c = { index, sock, left: null };
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => reject(new Error(`client ${index}: no upgrade within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
      const onHandshake = (d) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
        if (!status.startsWith('HTTP/1.1 101')) return reject(new Error(`client ${index}: ${status}`));
        sock.off('data', onHandshake);
        sock.on('data', (chunk) => onFrames(c, chunk));
        if (end + 4 < head.length) onFrames(c, head.subarray(end + 4));
        resolve(c);
      };
      sock.on('data', onHandshake);
      sock.on('error', (e) => {
        clearTimeout(timer);
        if (!finished) error(`client ${index}: ${e.message}`);
        reject(e);
      });
      sock.on('close', () => {
        if (!finished) error(`client ${index}: connection closed`);
      });
      sock.write(
        `GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${Buffer.from(`wasmux-bench-${String(index).padStart(3, '0')}`)
            .toString('base64')
            .slice(0, 22)}==\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n',
      );
    });
  }

  function percentile(q, total) {
    let target = Math.ceil(q * total);
    for (let i = 0; i <= HIST; i++) {
      target -= hist[i];
      if (target <= 0) return i;
    }
    return HIST;
  }

  (async () => {
    // One at a time: the room is complete before anyone sends.
    for (let i = 0; i < N; i++) conns.push(await connectOne(i));
    for (let s = 0; s < S; s++) pump(s);
    await new Promise((r) => setTimeout(r, warmupMs));
    measuring = true;
    const t0 = performance.now();
    process.stdout.write('measure-start\n');
    await new Promise((r) => setTimeout(r, durationMs));
    measuring = false;
    const seconds = (performance.now() - t0) / 1000;
    const report = {
      conns: N,
      senders: S,
      size: SIZE,
      window: W,
      seconds,
      messagesSent,
      sentPerSec: messagesSent / seconds,
      deliveries,
      deliveriesPerSec: deliveries / seconds,
      p50us: deliveries ? percentile(0.5, deliveries) : null,
      p99us: deliveries ? percentile(0.99, deliveries) : null,
      errors,
      errorSamples,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
    finished = true;
    for (const c of conns) c.sock.destroy();
    process.exit(0);
  })().catch((e) => {
    process.stderr.write(`loadgen: ${e.message}\n`);
    process.exit(1);
  });
}

// ============================================================================
// Runner
// ============================================================================

function parseOptions() {
  const values = flags({
    servers: { type: 'string' },
    conns: { type: 'string' },
    senders: { type: 'string', default: '4' },
    size: { type: 'string', default: '64' },
    window: { type: 'string', default: '32' },
    'duration-ms': { type: 'string' },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  });
  const servers = parseList(values.servers ?? Object.keys(SERVERS).join(','), '--servers', (s) => {
    if (!(s in SERVERS)) fail(`unknown server '${s}'; known: ${Object.keys(SERVERS).join(', ')}`);
    return s;
  });
  const conns = parseList(values.conns ?? '50,100', '--conns', (s) => intOption(s, '--conns', 2, MAX_CONNS));
  const senders = intOption(values.senders, '--senders', 1, MAX_CONNS);
  for (const n of conns) if (senders > n) fail(`--senders ${senders} is more than --conns ${n}`);
  const size = intOption(values.size, '--size', 14, 65535);
  const window = intOption(values.window, '--window', 1, 100000);
  const durationText = values['duration-ms'] ?? (values.quick ? '1000' : (process.env.BENCH_DURATION_MS ?? '5000'));
  const durationMs = intOption(durationText, 'the duration', 100, 3600000);
  return { servers, conns, senders, size, window, durationMs };
}

const startServer = (name) => startAnnounced(name, SERVERS[name].argv());

async function runLoad(server, opts, conns, clkTck) {
  const args = [
    SELF,
    '--loadgen',
    '--port',
    String(server.port),
    '--conns',
    String(conns),
    '--senders',
    String(opts.senders),
    '--size',
    String(opts.size),
    '--window',
    String(opts.window),
    '--duration-ms',
    String(opts.durationMs),
    '--warmup-ms',
    String(WARMUP_MS),
  ];
  // On loopback the kernel does much of the receiver's TCP work in the sender's
  // system time, so the server's user/system split says where its time goes.
  const sample = (loadgen) => ({ server: cpuSplit(server.proc.pid), loadgen: cpuTicks(loadgen.proc.pid), ns: process.hrtime.bigint() });
  const {
    child: loadgen,
    exit,
    start,
    end,
    report,
    lineError,
  } = await runMeasured([process.execPath, ...args], sample, WARMUP_MS + opts.durationMs + CONNECT_TIMEOUT_MS * 2 + 15000);
  if (lineError) throw new Error(explain(`measuring failed: ${lineError.message}`, loadgen));
  if (!report || !start) throw new Error(explain(`loadgen failed (${describeExit(exit)})`, loadgen));
  const windowSec = Number(end.ns - start.ns) / 1e9;
  const serverUserSec = (end.server[0] - start.server[0]) / clkTck;
  const serverSysSec = (end.server[1] - start.server[1]) / clkTck;
  const serverCpuSec = serverUserSec + serverSysSec;
  return {
    ...report,
    windowSec,
    serverCpuSec,
    serverUserSec,
    serverSysSec,
    serverCpuPct: (100 * serverCpuSec) / windowSec,
    loadgenCpuPct: (100 * (end.loadgen - start.loadgen)) / clkTck / windowSec,
    cpuUsPerDelivery: report.deliveries > 0 ? (serverCpuSec / windowSec / report.deliveriesPerSec) * 1e6 : null,
    error: report.errors ? explain(`${report.errors} errors: ${report.errorSamples.join('; ')}`, loadgen) : undefined,
  };
}

async function runCell(name, opts, conns, clkTck) {
  const server = await startServer(name);
  let result, error;
  try {
    result = await runLoad(server, opts, conns, clkTck);
  } catch (err) {
    error = err;
  }
  const stop = await stopServer(server);
  if (error) throw error;
  return { ...result, serverExit: stop.exit, serverNeededSigkill: stop.sigkill };
}

const fmtK = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));

function table(cells, serverOrder) {
  const rows = [];
  const sorted = cells.toSorted((a, b) => a.conns - b.conns || serverOrder.indexOf(a.server) - serverOrder.indexOf(b.server));
  for (const c of sorted) {
    if (c.error) {
      rows.push([c.server, c.conns, '', 'failed']);
      continue;
    }
    const base = cells.find((b) => b.server === BASELINE && b.conns === c.conns && !b.error);
    rows.push([
      c.server,
      c.conns,
      c.senders,
      fmtK(c.sentPerSec),
      fmtK(c.deliveriesPerSec),
      fmt(c.p50us, 0),
      fmt(c.p99us, 0),
      `${fmt(c.serverCpuPct, 0)}%`,
      `${fmt(c.loadgenCpuPct, 0)}%`,
      fmt(c.cpuUsPerDelivery, 3),
      ratio(c.deliveriesPerSec, base?.deliveriesPerSec),
      ratio(c.cpuUsPerDelivery, base?.cpuUsPerDelivery),
    ]);
  }
  return markdownTable(
    [
      'server',
      'clients',
      'senders',
      'msgs sent/s',
      'deliveries/s',
      'p50 µs',
      'p99 µs',
      'server CPU',
      'loadgen CPU',
      'server CPU µs/delivery',
      'deliveries/s vs node-ws',
      'CPU/delivery vs node-ws',
    ],
    rows,
  );
}

async function main() {
  const opts = parseOptions();
  const clkTck = clockTicksPerSecond();
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    kernel: kernelRelease(),
    command: commandLine(),
    clkTck,
    warmupMs: WARMUP_MS,
    ...opts,
  };
  printHeader(meta);
  console.log(
    `window:  ${WARMUP_MS} ms warmup + ${opts.durationMs} ms measured; ${opts.senders} senders, ` +
      `${opts.size}-byte binary messages, ${opts.window} in flight per sender\n`,
  );

  const cells = [];
  const skipped = [];
  const servers = opts.servers.filter((name) => {
    const missing = SERVERS[name].missing();
    if (missing.length === 0) return true;
    const reason = `missing ${missing.join(', ')} (run npm run build first)`;
    console.error(`${name}: skipped, ${reason}`);
    skipped.push({ server: name, reason });
    return false;
  });
  // Servers inner: the cells compared with each other run back to back, so a
  // neighbour's load on a shared machine skews them alike.
  for (const n of opts.conns) {
    for (const name of servers) {
      process.stderr.write(`${name} × ${n} clients ... `);
      try {
        const r = await runCell(name, opts, n, clkTck);
        cells.push({ server: name, ...r });
        console.error(
          r.error
            ? `FAILED\n  ${r.error}`
            : `${fmtK(r.deliveriesPerSec)} deliveries/s, p99 ${r.p99us} µs, ${fmt(r.cpuUsPerDelivery, 3)} µs CPU/delivery`,
        );
      } catch (err) {
        cells.push({ server: name, conns: n, error: err.message });
        console.error(`FAILED\n  ${err.message}`);
      }
    }
  }

  console.log(table(cells, opts.servers));
  for (const s of skipped) console.log(`\n${s.server}: skipped, ${s.reason}`);
  for (const c of cells.filter((c) => c.error)) console.log(`\n${c.server} × ${c.conns}: ${c.error}`);
  const clientBound = cells.filter((c) => c.loadgenCpuPct >= 90);
  if (clientBound.length) {
    console.log(
      `\nloadgen used ≥90% of a core in: ${clientBound.map((c) => `${c.server}×${c.conns}`).join(', ')}` +
        ' — there deliveries/s is bounded by the client; compare CPU/delivery.',
    );
  }
  writeResults('ws', meta.date, { meta, skipped, results: cells });
  if (cells.some((c) => c.error)) process.exitCode = 1;
}

if (process.argv.includes('--loadgen')) {
  loadgen(process.argv.slice(2));
} else {
  onInterrupt();
  await main();
}
