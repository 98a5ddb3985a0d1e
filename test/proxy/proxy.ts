/**
 * The PROXY protocol suites' tools: dist/plugins/http.wasm served with
 * policy proxyProtocol, headers of both versions built by hand, and a raw
 * client that writes bytes and collects what comes back until the server
 * closes (every socket tracked: destroyClients() in afterEach).
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import net from 'node:net';
import { serve, type LogEntry, type PluginServer, type ServeOptions } from '../../dist/host/index.js';
import { BACKEND_UNDER_TEST, assertBackend } from '../helpers/backend-under-test.js';
import { HTTP_WASM } from '../helpers/http.js';

export interface ProxiedHttp {
  server: PluginServer;
  port: number;
  logs: LogEntry[];
  stop(): Promise<void>;
}

/** http.wasm on 127.0.0.1:0 with proxyProtocol (and whatever `policy` adds). */
export async function startProxiedHttp(
  opts: { backend?: string; policy?: Record<string, unknown> } & Partial<Omit<ServeOptions, 'plugin' | 'logger' | 'policy'>> = {},
): Promise<ProxiedHttp> {
  const logs: LogEntry[] = [];
  const { backend = BACKEND_UNDER_TEST, policy = {}, ...rest } = opts;
  const server = await serve({
    plugin: HTTP_WASM,
    listen: ['127.0.0.1:0'],
    workers: 1,
    backend,
    ...rest,
    policy: { proxyProtocol: true, ...policy },
    logger: (e) => logs.push(e),
  });
  if (backend === BACKEND_UNDER_TEST) assertBackend(server.backend);
  await server.ready;
  return { server, port: server.addresses[0]!.port, logs, stop: () => server.stop() };
}

/**
 * The shape of the refusal tests: a proxied http server (with `policy`) and
 * an echo neighbour, started before the file's tests and stopped after them,
 * clients destroyed after each test. Read `http` and `neighbour` in tests.
 */
export function proxiedWithNeighbour(policy?: Record<string, unknown>): { readonly http: ProxiedHttp; readonly neighbour: ProxiedHttp } {
  const pair = {} as { http: ProxiedHttp; neighbour: ProxiedHttp };
  beforeAll(async () => {
    pair.http = await startProxiedHttp({ policy });
    pair.neighbour = await startNeighbour();
  });
  afterEach(() => destroyClients());
  afterAll(async () => {
    await pair.http?.stop();
    await pair.neighbour?.stop();
  });
  return pair;
}

/** Refused headers, by reason, over every instance. */
export function rejected(server: PluginServer): Record<string, number> {
  const out: Record<string, number> = {};
  for (const st of server.stats()) for (const [k, v] of Object.entries(st.proxyRejected)) out[k] = (out[k] ?? 0) + v;
  return out;
}

export function v1(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function ipBytes(ip: string): Buffer {
  if (net.isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  // Expand "::" then 8 groups of 16 bits.
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...new Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), 2 * i));
  return b;
}

/**
 * A version 2 header. `command`: 'PROXY' or 'LOCAL'; `famProto`: the
 * family/protocol byte (default from the source's family, TCP); `tlvs`: raw
 * TLV bytes appended; `length`: the length field, if it is to lie.
 */
export function v2(opts: {
  command?: 'PROXY' | 'LOCAL';
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  famProto?: number;
  tlvs?: Buffer;
  length?: number;
  version?: number;
}): Buffer {
  const src = opts.src ?? '203.0.113.7';
  const dst = opts.dst ?? (net.isIPv4(src) ? '192.0.2.1' : '2001:db8::1');
  const v6 = net.isIPv6(src);
  const body = Buffer.concat([
    ipBytes(src),
    ipBytes(dst),
    Buffer.from([(opts.sport ?? 51234) >> 8, (opts.sport ?? 51234) & 0xff, (opts.dport ?? 80) >> 8, (opts.dport ?? 80) & 0xff]),
    opts.tlvs ?? Buffer.alloc(0),
  ]);
  const head = Buffer.alloc(4);
  head[0] = ((opts.version ?? 2) << 4) | (opts.command === 'LOCAL' ? 0 : 1);
  head[1] = opts.famProto ?? (v6 ? 0x21 : 0x11);
  head.writeUInt16BE(opts.length ?? body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

/** One TLV: type, 2-byte length, value. */
export function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.from([type, value.length >> 8, value.length & 0xff]);
  return Buffer.concat([h, value]);
}

export const GET_IP = 'GET /ip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

const clients = new Set<net.Socket>();

export function destroyClients(): void {
  for (const s of clients) s.destroy();
  clients.clear();
}

export interface Exchange {
  /** Everything the server sent. */
  data: Buffer;
  /** How it ended: the server closed (end or reset), or the deadline passed. */
  ended: 'closed' | 'timeout';
  /** ms from the last write to the close. */
  ms: number;
}

/**
 * Connects, writes each chunk (with `gapMs` between them), optionally ends
 * its side, and collects until the server closes or `timeoutMs` passes.
 */
export function exchange(
  port: number,
  chunks: (Buffer | string)[],
  opts: { gapMs?: number; end?: boolean; timeoutMs?: number } = {},
): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    clients.add(s);
    const got: Buffer[] = [];
    let wrote = 0;
    let done = false;
    const finish = (ended: Exchange['ended']) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      clients.delete(s);
      resolve({ data: Buffer.concat(got), ended, ms: performance.now() - wrote });
    };
    const timer = setTimeout(() => finish('timeout'), opts.timeoutMs ?? 5_000);
    s.on('data', (d) => got.push(d));
    s.on('end', () => finish('closed'));
    s.on('close', () => finish('closed'));
    s.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? finish('closed') : reject(e)));
    s.on('connect', async () => {
      for (let i = 0; i < chunks.length; i++) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        s.write(chunks[i]!);
      }
      wrote = performance.now();
      if (opts.end) s.end();
    });
  });
}

/** The body of the one HTTP response in `data` (throws unless it is a 200). */
export function body200(data: Buffer): string {
  const text = data.toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  if (!text.startsWith('HTTP/1.1 200 ') || split < 0) throw new Error(`not a 200: ${JSON.stringify(text.slice(0, 200))}`);
  return text.slice(split + 4);
}

/** A good proxied client gets its answer: the instance still serves. */
export async function stillServes(port: number, src = '192.0.2.77'): Promise<void> {
  const r = await exchange(port, [Buffer.concat([v2({ src }), Buffer.from(GET_IP)])]);
  const body = body200(r.data);
  if (body !== `${src}\n`) throw new Error(`/ip said ${JSON.stringify(body)}, not ${src}`);
}

/** A neighbour: http.wasm without proxyProtocol, which the abuse of the other must not disturb. */
export async function startNeighbour(backend = BACKEND_UNDER_TEST): Promise<ProxiedHttp> {
  const logs: LogEntry[] = [];
  const server = await serve({
    plugin: HTTP_WASM,
    listen: ['127.0.0.1:0'],
    workers: 1,
    backend,
    logger: (e) => logs.push(e),
  });
  await server.ready;
  return { server, port: server.addresses[0]!.port, logs, stop: () => server.stop() };
}

/** The neighbour answers GET /ip with the real peer. */
export async function neighbourServes(port: number): Promise<void> {
  const r = await exchange(port, [GET_IP]);
  if (body200(r.data) !== '127.0.0.1\n') throw new Error('the neighbour did not answer');
}
