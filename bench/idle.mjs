#!/usr/bin/env node
// Idle benchmark: what an open, idle connection costs. For each server, N
// connections each make one exchange that sets the protocol's state up (an
// HTTP request on a keep-alive connection, a SET, a WebSocket handshake, an
// echoed line), then sit idle; the runner reads, before and after:
//
//   process RSS       the server process's VmRSS (all of it: Node, V8, the guest, the host)
//   guest memory      wasmux only: the instance's linear memory resident in RAM, and its
//                     size (memory.size: it only grows, doubling each time)
//   kernel memory     Slab in /proc/meminfo (machine-wide, both ends of every loopback connection)
//   time to open      from the first connect to the last answer (idlegen, 200 at a time)
//
// and reports each per connection. The baselines run in the same run: the C
// epoll echo server, Node `net`, Node `http` keep-alive, Node `ws`. Then a
// C1M row on paper: processes and memory for a million idle connections at
// the measured costs. See bench/README.md.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import readline from 'node:readline';
import {
  BIN,
  ROOT,
  cli,
  commandLine,
  compileIfStale,
  explain,
  kernelRelease,
  onInterrupt,
  sleep,
  startAnnounced,
  stopServer,
  withTimeout,
} from './lib/process.mjs';
import { fmt, markdownTable, printHeader, writeResults } from './lib/report.mjs';

const HOST = '127.0.0.1';
// Each connection is one descriptor in the server and one in idlegen: 20,000 per process here.
const MAX_CONNS = 19000;
const SETTLE_MS = 1500;
const WASMUX_CLI = 'dist/host/cli/main.js';
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const UPGRADE =
  `GET / HTTP/1.1\\r\\nHost: ${HOST}\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n` +
  `Sec-WebSocket-Key: ${WS_KEY}\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n`;

// What each protocol's connections send once, and how idlegen knows the answer is complete.
const EXCHANGES = {
  echo: ['--send', 'hello\\n', '--expect', 'hello\\n'],
  http: ['--send', `GET / HTTP/1.1\\r\\nHost: ${HOST}\\r\\n\\r\\n`, '--http'],
  resp: ['--send', '*3\\r\\n$3\\r\\nSET\\r\\n$3\\r\\nkey\\r\\n$5\\r\\nvalue\\r\\n', '--expect', '+OK\\r\\n'],
  ws: ['--send', UPGRADE, '--expect', '\\r\\n\\r\\n'],
};

const wasmux = (plugin, conns) => [
  process.execPath,
  WASMUX_CLI,
  'run',
  `dist/plugins/${plugin}.wasm`,
  '--listen',
  `${HOST}:0`,
  '--max-connections',
  String(conns + 100),
  '--idle-timeout',
  '0',
  ...(values['max-memory'] ? ['--max-memory', values['max-memory']] : []),
];

const SERVERS = {
  'wasmux-echo': { protocol: 'echo', wasmux: true, argv: (n) => wasmux('echo', n) },
  'wasmux-http': { protocol: 'http', wasmux: true, argv: (n) => wasmux('http', n) },
  'wasmux-resp': { protocol: 'resp', wasmux: true, argv: (n) => wasmux('resp', n) },
  'wasmux-ws': { protocol: 'ws', wasmux: true, argv: (n) => wasmux('ws', n) },
  'c-epoll': { protocol: 'echo', argv: () => [path.join(BIN, 'echo-epoll'), '--host', HOST, '--port', '0'] },
  'node-net': { protocol: 'echo', argv: () => [process.execPath, 'bench/servers/node-net-echo.mjs', '--host', HOST, '--port', '0'] },
  'node-http': { protocol: 'http', argv: () => [process.execPath, 'bench/servers/node-http.mjs', '--host', HOST, '--port', '0'] },
  'node-ws': { protocol: 'ws', argv: () => [process.execPath, 'bench/servers/node-ws-broadcast.mjs', '--host', HOST, '--port', '0'] },
};

const USAGE = `usage: node bench/idle.mjs [options]      (or: npm run bench:idle -- [options])

  --servers LIST   comma-separated, from ${Object.keys(SERVERS).join(',')} (default: all)
  --conns LIST     idle connections per run, comma-separated (default: 15000; max ${MAX_CONNS})
  --max-memory MIB wasmux's memory cap per instance (default: its own default, 64)
  --help           this text

wasmux runs with --max-connections N+100 and --idle-timeout 0. Each (server, conns) pair gets a fresh server process. Prints a
markdown table and writes the results to bench/out/idle-<timestamp>.json.`;

const { fail, flags, list: parseList } = cli('idle', USAGE);
const values = flags({
  servers: { type: 'string' },
  conns: { type: 'string' },
  'max-memory': { type: 'string' },
  help: { type: 'boolean' },
});
const servers = values.servers
  ? parseList(values.servers, '--servers', (s) => {
      if (!SERVERS[s]) fail(`unknown server '${s}' (known: ${Object.keys(SERVERS).join(', ')})`);
      return s;
    })
  : Object.keys(SERVERS);
const connCounts = parseList(values.conns ?? '15000', '--conns', (s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1 || n > MAX_CONNS) fail(`--conns wants 1..${MAX_CONNS}, got '${s}'`);
  return n;
});

const IDLEGEN = compileIfStale('idlegen', fail);
compileIfStale('echo-epoll', fail);
let current = null; // the idlegen child, killed on Ctrl-C with the servers
onInterrupt(() => {
  current?.kill('SIGKILL');
});

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const slabKiB = () => Number(/^Slab:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))[1]);

/**
 * The guest's resident memory: V8 reserves 8 GiB of address space for each
 * wasm memory and makes its first memory.size bytes accessible, a mapping of
 * their own just before the rest of the reservation. Those mappings' Rss is
 * what the guests' memory costs in RAM (pages grown but never written cost
 * nothing: AssemblyScript's allocator doubles memory when it grows).
 */
function guestResidentKiB(pid) {
  const maps = fs
    .readFileSync(`/proc/${pid}/smaps`, 'utf8')
    .split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)
    .map((block) => {
      const [a, b] = block
        .slice(0, block.indexOf(' '))
        .split('-')
        .map((h) => BigInt(`0x${h}`));
      return { a, b, rss: Number(/^Rss:\s+(\d+) kB/m.exec(block)?.[1] ?? 0) };
    });
  let kib = 0;
  for (let i = 1; i < maps.length; i++) {
    if (maps[i].b - maps[i].a >= 4n * 2n ** 30n && maps[i - 1].b === maps[i].a) kib += maps[i - 1].rss;
  }
  return kib;
}

/** wasmux's counters (SIGUSR2): the linear memory of each instance, summed. */
async function guestMemory(server) {
  const lines = [];
  const seen = new Promise((resolve) => {
    const onData = (d) => {
      lines.push(String(d));
      if (/memory \d+/.test(lines.join(''))) {
        server.proc.stderr.off('data', onData);
        resolve();
      }
    };
    server.proc.stderr.on('data', onData);
  });
  server.proc.kill('SIGUSR2');
  await withTimeout(seen, 5000, () => fail('wasmux printed no counters on SIGUSR2'));
  return [...lines.join('').matchAll(/memory (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
}

/** idlegen against `port`; resolves once every connection has had its answer. */
function openIdle(port, protocol, conns) {
  const child = spawn(IDLEGEN, ['--port', String(port), '--conns', String(conns), ...EXCHANGES[protocol]], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  current = child;
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const replies = readline.createInterface({ input: child.stdout });
  const waiting = [];
  replies.on('line', (line) => waiting.shift()?.(JSON.parse(line)));
  const next = () => new Promise((resolve) => waiting.push(resolve));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = Promise.race([
    next(),
    exited.then((code) => {
      throw new Error(`idlegen exited (${code}): ${stderr.trim()}`);
    }),
  ]);
  return {
    ready,
    async check() {
      child.stdin.write('check\n');
      return (await next()).check;
    },
    async close() {
      child.stdin.end('close\n');
      await exited;
      current = null;
    },
  };
}

async function measure(name, conns) {
  const spec = SERVERS[name];
  const server = await startAnnounced(name, spec.argv(conns));
  try {
    await sleep(SETTLE_MS);
    const pid = server.proc.pid;
    const guest = async () => (spec.wasmux ? { size: await guestMemory(server), resident: guestResidentKiB(pid) * 1024 } : null);
    const before = { rss: rssKiB(pid), slab: slabKiB(), guest: await guest() };
    const idle = openIdle(server.port, spec.protocol, conns);
    const { ms } = await idle.ready;
    await sleep(SETTLE_MS);
    const after = { rss: rssKiB(pid), slab: slabKiB(), guest: await guest() };
    const stray = await idle.check();
    await idle.close();
    const per = (a, b) => ((b - a) * 1024) / conns;
    return {
      server: name,
      conns,
      openMs: ms,
      strayBytes: stray,
      rssBefore: before.rss * 1024,
      rssAfter: after.rss * 1024,
      rssPerConn: per(before.rss, after.rss),
      guestBefore: before.guest,
      guestAfter: after.guest,
      guestPerConn: spec.wasmux ? (after.guest.resident - before.guest.resident) / conns : null,
      guestSizePerConn: spec.wasmux ? (after.guest.size - before.guest.size) / conns : null,
      slabPerConn: per(before.slab, after.slab),
    };
  } catch (err) {
    return { server: name, conns, error: explain(err.message, server) };
  } finally {
    await stopServer(server);
  }
}

const meta = { date: new Date().toISOString(), node: process.version, kernel: kernelRelease(), command: commandLine() };
printHeader(meta);
const results = [];
for (const conns of connCounts) {
  for (const name of servers) {
    process.stderr.write(`${name}: ${conns} idle connections ... `);
    const r = await measure(name, conns);
    process.stderr.write(r.error ? `failed\n${r.error}\n` : `${fmt(r.rssPerConn, 0)} B RSS each\n`);
    results.push(r);
  }
}

const rows = results.map((r) =>
  r.error
    ? [r.server, String(r.conns), 'failed']
    : [
        r.server,
        String(r.conns),
        fmt(r.rssPerConn, 0),
        r.guestPerConn === null ? '—' : fmt(r.guestPerConn, 0),
        r.guestSizePerConn === null ? '—' : fmt(r.guestSizePerConn, 0),
        fmt(r.slabPerConn, 0),
        fmt(r.openMs / 1000, 2),
        r.strayBytes === 0 ? 'none' : `${r.strayBytes} bytes`,
      ],
);
console.log(
  markdownTable(
    [
      'server',
      'conns',
      'RSS B/conn',
      'guest resident B/conn',
      'guest memory.size B/conn',
      'kernel slab B/conn (both ends)',
      'open s',
      'sent to idle',
    ],
    rows,
  ),
);

// A million idle connections on paper, from the largest run of each server.
const C1M = 1_000_000;
const paper = [];
for (const name of servers) {
  const best = results.filter((r) => r.server === name && !r.error).sort((a, b) => b.conns - a.conns)[0];
  if (!best) continue;
  // 19,000 descriptors per process here: processes needed, each with its own fixed cost (RSS before).
  const perProcess = MAX_CONNS;
  const processes = Math.ceil(C1M / perProcess);
  const user = processes * best.rssBefore + C1M * best.rssPerConn;
  const kernel = (C1M * best.slabPerConn) / 2; // the server's end only
  paper.push([
    name,
    String(processes),
    fmt(best.rssBefore / 2 ** 20, 0),
    `${fmt(user / 2 ** 30, 2)} GiB`,
    `${fmt(kernel / 2 ** 30, 2)} GiB`,
  ]);
}
console.log('\nC1M on paper (from the measured costs; 19,000 connections per process, the open-file limit here):\n');
console.log(
  markdownTable(['server', 'processes', 'RSS MiB per process before any connection', 'user memory', 'kernel (server side, slab/2)'], paper),
);
writeResults('idle', meta.date, { ...meta, results });
