/**
 * A backend opened in this thread and driven directly (no guest, no handle
 * table): its sockets on 127.0.0.1, port 0, its wait() called with bounded
 * timeouts, recv and send through absolute addresses of a Buffer.
 *
 * Framework-free on purpose (node:assert, no vitest): the same checks run
 * in vitest's process on the backends available here and under Windows'
 * node.exe (wine) on iocp, where test/backend/run-checks.ts runs them.
 * Node 22 runs this file by stripping its types, so it uses only erasable
 * TypeScript (no enums, no parameter properties) and imports only
 * JavaScript (dist/, node:).
 *
 * Every loop here is bounded in count and in time; `dispose()` closes every
 * socket the rig made and the backend itself, whatever a check left open.
 */
import assert from 'node:assert/strict';
import { codeOf } from '../../dist/host/backends/backend.js';
import type { Backend, BackendModule, BackendName } from '../../dist/host/backends/backend.js';
import { SocketAddress } from '../../dist/host/backends/address.js';
import { addressOf } from '../../dist/host/ffi/native-memory.js';
import {
  ERROR_CODE_NAMES,
  INTEREST_READABLE,
  INTEREST_WRITABLE,
  READY_ERROR,
  READY_HANG_UP,
  READY_READABLE,
  READY_READ_CLOSED,
  READY_WRITABLE,
} from '../../dist/host/generated/contract.js';

export const R = INTEREST_READABLE;
export const W = INTEREST_WRITABLE;
export const RW = INTEREST_READABLE | INTEREST_WRITABLE;
export { READY_ERROR, READY_HANG_UP, READY_READABLE, READY_READ_CLOSED, READY_WRITABLE };

/** How long a wait for something that must happen may take: generous, for a loaded 2-core machine and wine. */
export const SOON_MS = 5_000;
/** How long to watch for something that must not happen. */
export const QUIET_MS = 150;

export interface Ev {
  key: number;
  ready: number;
}

/** A result's name: 'ok' for a non-negative one, else the WIT error-code's name ('would-block'). */
export function errName(result: number): string {
  return result >= 0 ? 'ok' : (ERROR_CODE_NAMES[codeOf(result)] ?? `code ${codeOf(result)}`);
}

/** Readiness bits as text, for messages: "readable|read-closed". */
export function bits(ready: number): string {
  const names = ['readable', 'writable', 'read-closed', 'hang-up', 'error'];
  const out = names.filter((_, i) => ready & (1 << i));
  return out.length > 0 ? out.join('|') : 'none';
}

export function show(events: readonly Ev[]): string {
  return `[${events.map((e) => `${e.key}:${bits(e.ready)}`).join(', ')}]`;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Pair {
  client: number;
  server: number;
}

export class Rig {
  readonly b: Backend;
  readonly module: BackendModule;
  private readonly sockets = new Set<number>();
  private readonly out = new Uint32Array(2 * 1024);
  /** Scratch memory for recv and send (the kernel reads and writes it through its absolute address). */
  readonly mem = Buffer.alloc(1 << 20);
  readonly base = addressOf(this.mem);
  private listener: { fd: number; addr: SocketAddress } | null = null;
  private disposed = false;

  constructor(module: BackendModule, sendBufferBytes = 65536) {
    this.module = module;
    this.b = module.open({ sendBufferBytes });
  }

  get name(): BackendName {
    return this.module.name;
  }

  private own(fd: number, what: string): number {
    assert.ok(fd >= 0, `${what} failed: ${errName(fd)} (${this.b.lastOsError()})`);
    this.sockets.add(fd);
    return fd;
  }

  /** A listener on 127.0.0.1, port 0, and the address it got. */
  listen(): { fd: number; addr: SocketAddress } {
    const fd = this.own(this.b.listen(SocketAddress.parse('127.0.0.1:0')!, 64, false), 'listen');
    const addr = new SocketAddress();
    assert.equal(errName(this.b.localAddress(fd, addr)), 'ok', 'localAddress of the listener');
    assert.notEqual(addr.port, 0, 'port 0 resolved');
    return { fd, addr };
  }

  connect(addr: SocketAddress): number {
    return this.own(this.b.connect(addr), `connect to ${addr}`);
  }

  /** Makes a socket the check created itself (b.connect) the rig's to close. */
  adopt(fd: number): number {
    return this.own(fd, 'adopt');
  }

  /** Accepts one connection, retrying on would-block (bounded). */
  async accept(listener: number, peer = new SocketAddress()): Promise<number> {
    const deadline = performance.now() + SOON_MS;
    for (;;) {
      const fd = this.b.accept(listener, peer);
      if (fd >= 0) return this.own(fd, 'accept');
      assert.equal(errName(fd), 'would-block', `accept: ${this.b.lastOsError()}`);
      assert.ok(performance.now() < deadline, `no connection to accept within ${SOON_MS} ms`);
      await sleep(2);
    }
  }

  /** A connected pair over loopback (client from connect, server from accept), through one listener per rig. */
  async pair(): Promise<Pair> {
    this.listener ??= this.listen();
    const client = this.connect(this.listener.addr);
    const server = await this.accept(this.listener.fd);
    return { client, server };
  }

  /** Closes a socket through the backend (which deregisters it first if needed). */
  closeSocket(fd: number): void {
    assert.ok(this.sockets.delete(fd), `socket ${fd} is not one of the rig's`);
    this.b.closeSocket(fd);
  }

  /** Closes every socket still open and the backend. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const fd of this.sockets) this.b.closeSocket(fd);
    this.sockets.clear();
    this.b.close();
  }

  /** One wait(), its events. */
  wait(timeoutMs: number, max = 1024): Ev[] {
    const n = this.b.wait(this.out, max, timeoutMs);
    assert.ok(n >= 0, `wait failed: ${errName(n)} (${this.b.lastOsError()})`);
    assert.ok(n <= max, `wait returned ${n} events, more than max ${max}`);
    const events: Ev[] = [];
    for (let i = 0; i < n; i++) events.push({ key: this.out[2 * i]!, ready: this.out[2 * i + 1]! });
    const keys = events.map((e) => e.key);
    assert.equal(new Set(keys).size, keys.length, `one event per key per wait: ${show(events)}`);
    return events;
  }

  /** Every event of the waits made during `ms` (for "nothing happens"). */
  collect(ms = QUIET_MS, max = 1024): Ev[] {
    const deadline = performance.now() + ms;
    const events: Ev[] = [];
    for (let i = 0; i < 1000; i++) {
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0) break;
      events.push(...this.wait(left, max));
    }
    return events;
  }

  /**
   * Waits until a wait reports an event matching `pred`; returns every event
   * seen up to and including that wait. Fails after `timeoutMs`.
   */
  until(pred: (e: Ev) => boolean, what: string, timeoutMs = SOON_MS, max = 1024): Ev[] {
    const deadline = performance.now() + timeoutMs;
    const events: Ev[] = [];
    for (let i = 0; i < 10_000; i++) {
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0) break;
      const got = this.wait(Math.min(left, 500), max);
      events.push(...got);
      if (got.some(pred)) return events;
    }
    assert.fail(`${what}: no such event within ${timeoutMs} ms; saw ${show(events)}`);
  }

  /** The single event for `key` in `events` (fails on none or several). */
  static one(events: readonly Ev[], key: number, what: string): Ev {
    const mine = events.filter((e) => e.key === key);
    assert.equal(mine.length, 1, `${what}: exactly one event for key ${key}; saw ${show(events)}`);
    return mine[0]!;
  }

  /** Sends all of `data` (a small message: one call on a fresh socket; bounded retries otherwise). */
  send(fd: number, data: string | Buffer): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    assert.ok(bytes.length <= this.mem.length);
    bytes.copy(this.mem, 0);
    let off = 0;
    for (let i = 0; i < 1000 && off < bytes.length; i++) {
      const r = this.b.send(fd, this.base + off, bytes.length - off);
      if (r > 0) off += r;
      else assert.equal(errName(r), 'would-block', `send: ${this.b.lastOsError()}`);
    }
    assert.equal(off, bytes.length, 'sent everything');
  }

  /** One recv of up to `len` bytes: the bytes, or the (non-positive) result. */
  recv(fd: number, len = 65536): Buffer | number {
    const r = this.b.recv(fd, this.base, Math.min(len, this.mem.length));
    return r > 0 ? Buffer.from(this.mem.subarray(0, r)) : r;
  }

  /**
   * Reads until would-block, end of stream or an error (bounded): the bytes
   * and the last result (a negative code, or 0 for end of stream). Tells the
   * backend the direction is drained when it ended on would-block and
   * `tellDrained` (as the host does at every would-block).
   */
  read(fd: number, tellDrained = true): { bytes: Buffer; last: number } {
    const chunks: Buffer[] = [];
    let last = 0;
    for (let i = 0; i < 100_000; i++) {
      const r = this.recv(fd);
      if (typeof r === 'number') {
        last = r;
        break;
      }
      chunks.push(r);
    }
    if (tellDrained && errName(last) === 'would-block') this.b.drained?.(fd, R);
    return { bytes: Buffer.concat(chunks), last };
  }

  /** Sends until would-block (bounded): how many bytes the socket took. */
  fill(fd: number, tellDrained = true): number {
    const chunk = 64 * 1024;
    this.mem.fill(0x5a, 0, chunk);
    let total = 0;
    for (let i = 0; i < 16_384; i++) {
      const r = this.b.send(fd, this.base, chunk);
      if (r < 0) {
        assert.equal(errName(r), 'would-block', `send while filling: ${this.b.lastOsError()}`);
        if (tellDrained) this.b.drained?.(fd, W);
        return total;
      }
      total += r;
    }
    assert.fail(`the socket took ${total} bytes without ever blocking`);
  }

  /** Reads from `fd` until `total` bytes have come (sleeping on would-block; bounded), without telling the backend. */
  async readExactly(fd: number, total: number, timeoutMs = SOON_MS * 2): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let got = 0;
    while (got < total) {
      const r = this.b.recv(fd, this.base, Math.min(total - got, this.mem.length));
      if (r > 0) {
        got += r;
        continue;
      }
      assert.equal(errName(r), 'would-block', `reading ${total} bytes: got ${got}, then ${r === 0 ? 'end of stream' : errName(r)}`);
      assert.ok(performance.now() < deadline, `read ${got} of ${total} bytes within ${timeoutMs} ms`);
      await sleep(1);
    }
  }
}
