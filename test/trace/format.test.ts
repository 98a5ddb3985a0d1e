// The trace format at the byte level: what the recorder's writer writes, the
// reader decodes to the same values (varints up to 2^53, negative results,
// IPv4 and IPv6 addresses, 64-bit clock readings, texts, bytes larger than
// the chunk, which skip it), in order, with the end record last; the size
// bound ends the file with "truncated" and tells its caller once.
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SocketAddress } from '../../host/backends/address.js';
import {
  END_REASONS,
  K_ACCEPT,
  K_END,
  K_GUEST_LINE,
  K_MONOTONIC,
  K_RECV,
  K_WALL,
  RECORD_KINDS,
  TRACE_VERSION,
  TraceReader,
  type TraceHeader,
  encodePrefix,
} from '../../host/trace/format.js';
import { CHUNK_BYTES, TraceWriter } from '../../host/trace/recorder.js';

const dir = mkdtempSync(join(tmpdir(), 'wasmux-format-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HEADER: TraceHeader = {
  plugin: { path: '/p.wasm', name: 'p', sha256: 'ab'.repeat(32) },
  config: 'c',
  listen: ['127.0.0.1:7000', '[::1]:7001'],
  instance: 3,
  incarnation: 0,
  limits: { maxMemoryMiB: 64, maxConnections: 10, maxEventsPerWait: 4, maxRecvBytes: 1 << 20, maxTableElements: 100 },
  backend: 'epoll',
  startedAt: '2026-12-07T00:00:00.000Z',
};

function writer(name: string, maxBytes: number, onBound: (m: string) => void = () => {}): { file: string; w: TraceWriter } {
  const file = join(dir, name);
  return { file, w: new TraceWriter(openSync(file, 'w'), maxBytes, onBound, encodePrefix(HEADER)) };
}

describe('the trace format', () => {
  it('reads back what the writer wrote', () => {
    const { file, w } = writer('all', 1 << 30);
    const v4 = SocketAddress.parse('10.1.2.3:65535')!;
    const v6 = SocketAddress.parse('[2001:db8::ff:1]:443')!;
    const big = new Uint8Array(CHUNK_BYTES + 1000).map((_, i) => (i * 7) & 0xff);
    expect(w.room(64)).toBe(true);
    w.byte(K_ACCEPT);
    w.u(2 ** 32 - 1);
    w.s(-1 - 3); // fail(3)
    w.byte(K_ACCEPT);
    w.u(0);
    w.s(2 ** 31);
    w.addr(v6);
    w.byte(K_ACCEPT);
    w.u(127);
    w.s(128);
    w.addr(v4);
    w.byte(K_MONOTONIC);
    w.u64(2n ** 63n + 5n);
    w.byte(K_WALL);
    w.f64(1765065600123.5);
    w.byte(K_GUEST_LINE);
    w.u(2);
    w.text('héllo\n');
    expect(w.room(64 + big.length)).toBe(true);
    w.byte(K_RECV);
    w.u(5);
    w.u(big.length);
    w.s(big.length);
    w.bytes(big, 0, big.length); // larger than the chunk: the chunk goes first, then these straight to the file
    w.end('trapped', 'unreachable');

    const r = new TraceReader(readFileSync(file), file);
    expect(r.header).toEqual(HEADER);
    const a = r.next();
    expect([a.kind, a.f.handle, a.f.result, a.f.peer]).toEqual([K_ACCEPT, 2 ** 32 - 1, -4, null]);
    const b = r.next();
    expect([b.f.handle, b.f.result, String(b.f.peer)]).toEqual([0, 2 ** 31, '[2001:db8::ff:1]:443']);
    const c = r.next();
    expect([c.f.handle, c.f.result, String(c.f.peer)]).toEqual([127, 128, '10.1.2.3:65535']);
    expect(r.next().f.ns).toBe(2n ** 63n + 5n);
    expect(r.next().f.ms).toBe(1765065600123.5);
    const line = r.next();
    expect([line.f.level, line.f.text]).toEqual([2, 'héllo\n']);
    const recv = r.next();
    expect([recv.f.handle, recv.f.max, recv.f.result]).toEqual([5, big.length, big.length]);
    expect(Buffer.from(recv.f.bytes as Uint8Array).equals(Buffer.from(big))).toBe(true);
    const end = r.next();
    expect([end.kind, END_REASONS[end.f.reason as number], end.f.hasMessage, end.f.message]).toEqual([K_END, 'trapped', 1, 'unreachable']);
    expect(r.atEnd).toBe(true);
    // The writer is done: it records nothing more, and writes nothing more.
    expect(w.room(1)).toBe(false);
  });

  it('ends the file "truncated" at the size bound, once', () => {
    const told: string[] = [];
    const bound = 10_000;
    const { file, w } = writer('bounded', bound, (m) => told.push(m));
    let records = 0;
    while (w.room(100)) {
      w.byte(K_GUEST_LINE);
      w.u(2);
      w.text('x'.repeat(90));
      records++;
    }
    expect(w.room(1)).toBe(false);
    expect(told).toEqual(['trace reached its size bound (--record-max-bytes 10000); recording stopped, the instance goes on']);
    const bytes = readFileSync(file);
    expect(bytes.length).toBeLessThanOrEqual(bound);
    const r = new TraceReader(bytes, file);
    let read = 0;
    for (;;) {
      const rec = r.next();
      if (rec.kind === K_END) {
        expect(END_REASONS[rec.f.reason as number]).toBe('truncated');
        break;
      }
      read++;
    }
    expect(read).toBe(records);
    expect(records).toBeGreaterThan(0);
    expect(r.atEnd).toBe(true);
  });

  it('writes the prefix the documentation gives', () => {
    const p = encodePrefix(HEADER);
    expect(p.subarray(0, 8).toString('latin1')).toBe('WASMUXTR');
    expect(p.readUInt16LE(8)).toBe(1);
    expect(p.readUInt16LE(10)).toBe(0);
    expect(p.readUInt32LE(12)).toBe(p.length - 16);
    expect(JSON.parse(p.subarray(16).toString('utf8'))).toEqual(HEADER);
  });

  it('is the one docs/trace-format.md documents: every kind, its number, name and fields', () => {
    const doc = readFileSync(fileURLToPath(new URL('../../docs/trace-format.md', import.meta.url)), 'utf8');
    expect(doc).toContain(`| 8 | 2 | version (u16): **${TRACE_VERSION}** |`);
    const rows = new Map([...doc.matchAll(/^\| (\d+) \| `([a-z-]+)` \| [^|]+ \|([^|]*)\|([^|]*)\|$/gm)].map((m) => [Number(m[1]), m]));
    expect([...rows.keys()].sort((a, b) => a - b)).toEqual(Object.keys(RECORD_KINDS).map(Number));
    for (const [kind, spec] of Object.entries(RECORD_KINDS)) {
      const row = rows.get(Number(kind))!;
      expect(row[2], `kind ${kind}`).toBe(spec.name);
      // Each field is named in its column (arg or ret), in order.
      for (const role of ['arg', 'ret'] as const) {
        const names = spec.fields.filter(([, , r]) => r === role).map(([n]) => n);
        const column = row[role === 'arg' ? 3 : 4]!;
        let at = 0;
        for (const n of names) {
          const found = column.indexOf(n, at);
          expect(found, `kind ${kind} (${spec.name}): ${role} field ${n} in "${column}"`).toBeGreaterThanOrEqual(0);
          at = found + n.length;
        }
      }
    }
  });
});
