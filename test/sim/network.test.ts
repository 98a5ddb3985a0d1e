// The simulated network as a backend (host/sim/network.ts), driven directly
// without a guest: the contract of host/backends/backend.ts that every
// backend keeps (edge-triggered readiness, accept, half-close, reset, a
// bounded send queue that says would-block and then brings a writable edge,
// connect refused), here in memory. Without a scenario driving it, wait
// returns what is ready at once.
import { describe, it, expect } from 'vitest';
import { SimNetwork } from '../../dist/host/sim/network.js';
import { Random } from '../../dist/host/sim/random.js';
import { VirtualClock } from '../../dist/host/sim/clock.js';
import { NO_FAULTS, parseFaults } from '../../dist/host/sim/faults.js';
import { SocketAddress } from '../../dist/host/backends/address.js';
import { addressOf } from '../../dist/host/ffi/native-memory.js';
import { codeOf } from '../../dist/host/backends/backend.js';
import {
  ERROR_CODE_NAMES,
  INTEREST_READABLE as R,
  INTEREST_WRITABLE as W,
  READY_ERROR,
  READY_HANG_UP,
  READY_READABLE,
  READY_READ_CLOSED,
  READY_WRITABLE,
} from '../../dist/host/generated/contract.js';

const ADDR = SocketAddress.parse('127.0.0.1:8080')!;

function rig(opts: { pipeBytes?: number; faults?: string; seed?: number } = {}) {
  const lines: string[] = [];
  const clock = new VirtualClock();
  const net = new SimNetwork({
    decisions: Random.stream(opts.seed ?? 1, 1),
    random: Random.stream(opts.seed ?? 1, 0),
    clock,
    faults: opts.faults ? parseFaults(opts.faults) : NO_FAULTS,
    pipeBytes: opts.pipeBytes,
    record: (l) => lines.push(l),
  });
  const b = net.backend();
  const mem = Buffer.alloc(1 << 16);
  const base = addressOf(mem);
  const out = new Uint32Array(64);
  const wait = () => {
    const n = b.wait(out, 32, 0);
    return Array.from({ length: n }, (_, i) => ({ key: out[2 * i]!, ready: out[2 * i + 1]! }));
  };
  const err = (r: number) => (r >= 0 ? 'ok' : ERROR_CODE_NAMES[codeOf(r)]);
  const recvText = (fd: number, max = 4096) => {
    const r = b.recv(fd, base, max);
    return r < 0 ? err(r) : mem.toString('latin1', 0, r);
  };
  const sendText = (fd: number, text: string) => {
    mem.write(text, 0, 'latin1');
    return b.send(fd, base, text.length);
  };
  /** A listener on ADDR registered under key 1, a client connected and accepted (registered R|W under key 2). */
  const accepted = (interest = R | W) => {
    const l = b.listen(ADDR, 16, false);
    expect(b.register(l, 1, R)).toBe(0);
    const client = net.clientConnect(ADDR);
    expect(wait()).toEqual([{ key: 1, ready: READY_READABLE }]);
    const s = b.accept(l, new SocketAddress());
    expect(s).toBeGreaterThan(0);
    expect(err(b.accept(l, new SocketAddress()))).toBe('would-block');
    expect(b.register(s, 2, interest)).toBe(0);
    return { l, s, client };
  };
  return { net, b, clock, wait, err, recvText, sendText, accepted, lines };
}

describe('the simulated network as a backend', () => {
  it('reports a queued connection once (an edge, not a level), and the accepted peer address', () => {
    const { b, wait, net } = rig();
    const l = b.listen(ADDR, 16, false);
    b.register(l, 1, R);
    expect(wait()).toEqual([]);
    const c = net.clientConnect(ADDR);
    expect(wait()).toEqual([{ key: 1, ready: READY_READABLE }]);
    expect(wait()).toEqual([]); // still queued, but no new edge
    const peer = new SocketAddress();
    const s = b.accept(l, peer);
    expect(s).toBeGreaterThan(0);
    expect(peer.toString()).toBe(`127.0.0.1:${40000 + c.id}`);
    expect(c.accepted).toBe(true);
  });

  it('is edge-triggered: readable once per arrival, would-block when drained, a new edge for new bytes', () => {
    const { wait, recvText, accepted } = rig();
    const { client } = accepted(R);
    expect(wait()).toEqual([]); // registered with nothing to read: no event
    client.write('abc');
    expect(wait()).toEqual([{ key: 2, ready: READY_READABLE }]);
    expect(wait()).toEqual([]);
    expect(recvText(3 + 1)).toBe('abc');
    expect(recvText(4)).toBe('would-block');
    client.write('de');
    expect(wait()).toEqual([{ key: 2, ready: READY_READABLE }]);
    expect(recvText(4)).toBe('de');
  });

  it("half-close: the peer's shutdown is readable|read-closed and end of stream after its bytes; the other way still works", () => {
    const { wait, recvText, sendText, accepted, b } = rig();
    const { s, client } = accepted(R);
    client.write('last');
    client.shutdown();
    expect(wait()).toEqual([{ key: 2, ready: READY_READABLE | READY_READ_CLOSED }]);
    expect(recvText(s)).toBe('last');
    expect(recvText(s)).toBe(''); // 0 bytes: end of stream
    expect(recvText(s)).toBe(''); // and again
    expect(sendText(s, 'reply')).toBe(5);
    wait(); // the client reads while the plugin waits
    expect(client.text).toBe('reply');
    expect(client.ended).toBe(false);
    expect(b.shutdown(s, 1)).toBe(0);
    wait();
    expect(client.ended).toBe(true);
  });

  it("a peer's reset: error and hang-up, then recv and send fail with reset", () => {
    const { wait, recvText, sendText, accepted } = rig();
    const { s, client } = accepted(R);
    client.write('x');
    client.reset();
    const [ev] = wait();
    expect(ev!.ready & (READY_ERROR | READY_HANG_UP)).toBe(READY_ERROR | READY_HANG_UP);
    expect(recvText(s)).toBe('reset');
    expect(sendText(s, 'y') < 0 ? 'failed' : 'ok').toBe('failed');
    expect(client.wasReset).toBe(true);
  });

  it('a bounded send queue: a short send, would-block, then one writable edge once the peer has read', () => {
    const { wait, sendText, accepted, err } = rig({ pipeBytes: 1024 });
    const { s, client } = accepted(W);
    expect(wait()).toEqual([{ key: 2, ready: READY_WRITABLE }]); // register arms the edge: room now
    expect(sendText(s, 'a'.repeat(4096))).toBe(1024);
    expect(err(sendText(s, 'b'))).toBe('would-block');
    // The client reads (during the wait): room again, one writable edge.
    expect(wait()).toEqual([{ key: 2, ready: READY_WRITABLE }]);
    expect(client.text.length).toBe(1024);
    expect(wait()).toEqual([]);
    expect(sendText(s, 'b')).toBe(1);
  });

  it('a stalled peer: sends would-block until the stall ends, then one writable edge (also when the buffer was empty)', () => {
    let emptyAtStall = 0;
    const sizes: number[] = [];
    for (let seed = 1; seed <= 100; seed++) {
      const { wait, sendText, accepted, err, clock } = rig({ faults: 'stall=@0', seed });
      const { s, client } = accepted(W);
      expect(wait()).toEqual([{ key: 2, ready: READY_WRITABLE }]);
      let sent = 0;
      for (let i = 0; i < 100; i++) {
        const r = sendText(s, 'x');
        if (r < 0) {
          expect(err(r)).toBe('would-block');
          break;
        }
        sent += r;
      }
      expect(sent).toBeLessThanOrEqual(16);
      if (sent === 0) emptyAtStall++;
      sizes.push(sent);
      expect(wait()).toEqual([]); // still stalled: nothing read, no edge
      expect(client.text).toBe('');
      clock.advanceTo(clock.nowMs() + 200); // a stall lasts 200 ms at most
      expect(wait()).toEqual([{ key: 2, ready: READY_WRITABLE }]);
      expect(client.text).toBe('x'.repeat(sent));
      expect(sendText(s, 'y')).toBe(1);
    }
    expect(emptyAtStall, sizes.join(' ')).toBeGreaterThan(0);
  });

  it("the plugin's close: the client reads end of stream; the client's later write draws a reset", () => {
    const { wait, accepted, b } = rig();
    const { s, client } = accepted(R);
    b.closeSocket(s);
    wait();
    expect(client.ended).toBe(true);
    expect(client.closedByPlugin).toBe(true);
    client.write('too late');
    expect(client.wasReset).toBe(true);
  });

  it('a client closing with bytes it never read resets the connection (as TCP does); with none, it is end of stream', () => {
    const { wait, sendText, recvText, accepted, net } = rig();
    const { s, client } = accepted(R | W);
    wait();
    expect(sendText(s, 'unread')).toBe(6); // the client reads during a wait: none comes before its close
    client.close();
    const [ev] = wait();
    expect(ev!.ready & READY_ERROR).toBe(READY_ERROR);
    expect(recvText(s)).toBe('reset');

    const other = net.clientConnect(ADDR);
    other.close();
    expect(other.wasReset).toBe(false);
  });

  it("the plugin's connect: to a scenario listener it becomes writable and carries bytes; to nothing, error, and recv says refused", () => {
    const { net, b, wait, recvText, sendText } = rig();
    const target = SocketAddress.parse('127.0.0.1:9000')!;
    const l = net.clientListen(target);
    const s = b.connect(target);
    b.register(s, 7, R | W);
    expect(wait()).toEqual([{ key: 7, ready: READY_WRITABLE }]);
    expect(sendText(s, 'ping')).toBe(4);
    wait();
    expect(l.accepted.length).toBe(1);
    expect(l.accepted[0]!.text).toBe('ping');
    l.accepted[0]!.write('pong');
    expect(wait()).toEqual([{ key: 7, ready: READY_READABLE | READY_WRITABLE }]);
    expect(recvText(s)).toBe('pong');

    const nowhere = b.connect(SocketAddress.parse('127.0.0.1:9001')!);
    b.register(nowhere, 8, R | W);
    const [ev] = wait();
    expect(ev!.key).toBe(8);
    expect(ev!.ready & READY_ERROR).toBe(READY_ERROR);
    expect(recvText(nowhere)).toBe('refused');
  });

  it('port 0: the listener gets a port of its own; a client connecting to port 0 reaches it', () => {
    const { b, net, wait } = rig();
    const l = b.listen(SocketAddress.parse('127.0.0.1:0')!, 16, false);
    const bound = new SocketAddress();
    expect(b.localAddress(l, bound)).toBe(0);
    expect(bound.port).not.toBe(0);
    b.register(l, 1, R);
    const c = net.clientConnect(SocketAddress.parse('127.0.0.1:0')!);
    expect(c.refused).toBe(false);
    expect(wait()).toEqual([{ key: 1, ready: READY_READABLE }]);
    expect(net.clientConnect(bound).refused).toBe(false);
    expect(net.clientConnect(SocketAddress.parse('127.0.0.1:1')!).refused).toBe(true);
  });

  it('register twice, reregister or deregister an unregistered socket: closed', () => {
    const { b, err } = rig();
    const l = b.listen(ADDR, 16, false);
    expect(err(b.reregister(l, 1, R))).toBe('closed');
    expect(err(b.deregister(l))).toBe('closed');
    expect(b.register(l, 1, R)).toBe(0);
    expect(err(b.register(l, 1, R))).toBe('closed');
    expect(err(b.listen(ADDR, 16, false))).toBe('address-in-use');
  });
});
