/**
 * Host side of wasmux:plugin/tcp@0.1.0 (wit/tcp.wit), at the core-wasm level
 * (see assembly/sdk/bindings.ts for the guest's side of each signature).
 *
 * recv and send move data between the socket and guest memory with no copy
 * in the host: the kernel reads and writes guest memory at `mem.base + ptr`.
 */
import { ErrorCode, INTEREST_READABLE, INTEREST_WRITABLE } from '../generated/contract.js';
import { fail, codeOf } from '../backends/backend.js';
import { STAT_ACCEPTED, STAT_BYTES_IN, STAT_BYTES_OUT, STAT_OPEN, STAT_REFUSED, type InstanceContext } from './context.js';
import { GuestTrap } from './traps.js';
import { SocketAddress } from '../backends/address.js';
import { KIND_DRAINED, KIND_LISTENER, KIND_STREAM } from '../sandbox/handle-table.js';
import { LOG_NOTICE, LOG_OS_ERROR } from '../sandbox/log-limiter.js';

/** Connections closed at the cap within one accept call before the guest is told to retry. */
const REFUSE_BATCH = 256;

export function tcpImports(ctx: InstanceContext) {
  const { mem, table, backend, stats, limits, clock, logLimit, gate } = ctx;
  const maxConnections = limits.maxConnections;
  let refusedLogged = false;
  const peer = new SocketAddress();
  const scratch = new SocketAddress();
  const maxRecv = limits.maxRecvBytes;
  // Built once: a denial in a loop must not build it each time.
  const listenRule = `listen addresses are ${limits.listen.map(String).join(', ') || '(none)'}`;

  // Lifts a flattened socket-address (see bindings.ts) into `scratch`.
  function lift(family: number, a: number[], port: number): SocketAddress {
    if (family !== 0 && family !== 1) throw new GuestTrap(`invalid ip-address discriminant ${family}`);
    scratch.v6 = family === 1;
    for (let i = 0; i < 8; i++) scratch.groups[i] = i < 4 || scratch.v6 ? a[i]! & (scratch.v6 ? 0xffff : 0xff) : 0;
    scratch.port = port & 0xffff;
    return scratch;
  }

  // Lowers a socket-address (size 20, align 2) at `at`.
  function lower(at: number, addr: SocketAddress): void {
    const { u8, u16 } = mem;
    u8[at] = addr.v6 ? 1 : 0;
    if (addr.v6) for (let i = 0; i < 8; i++) u16[(at + 2 + 2 * i) >>> 1] = addr.groups[i]!;
    else for (let i = 0; i < 4; i++) u8[at + 2 + i] = addr.groups[i]!;
    u16[(at + 18) >>> 1] = addr.port;
  }

  // result<_, error-code>: size 2, align 1.
  function unit(retptr: number, r: number): void {
    mem.sync();
    mem.checkArea(retptr, 2, 1);
    mem.u8[retptr] = r >= 0 ? 0 : 1;
    if (r < 0) mem.u8[retptr + 1] = codeOf(r);
  }

  // result<u32, error-code> (also result<handle, ...>): size 8, align 4.
  function u32Result(retptr: number, r: number): void {
    mem.sync();
    mem.checkArea(retptr, 8, 4);
    if (r >= 0) {
      mem.u8[retptr] = 0;
      mem.u32[(retptr >>> 2) + 1] = r;
    } else {
      mem.u8[retptr] = 1;
      mem.u8[retptr + 4] = codeOf(r);
    }
  }

  function stream(h: number): number {
    const slot = table.lookup(h);
    return slot >= 0 && table.kind[slot] === KIND_STREAM ? slot : -1;
  }

  // Adds a new socket to the table, or closes it when the table is full.
  // Like everything that opens or closes a descriptor here, it runs inside
  // the kill gate (gate.enter() ... gate.leave(), see gate.ts): the socket
  // and its record in the shared registry come and go together.
  function adopt(fd: number, kind: number): number {
    const h = table.insert(fd, kind);
    if (h < 0) {
      table.abandon();
      backend.closeSocket(fd);
      return fail(ErrorCode.Limit);
    }
    if (kind === KIND_STREAM) {
      stats[STAT_OPEN]++;
      table.active[table.lookup(h)] = clock.nowMs;
    }
    return h;
  }

  // Accepts one connection within the policy's connection cap. At the cap,
  // connections are accepted and closed at once (the client sees the close,
  // the backlog does not fill up) and the guest sees would-block. A flood is
  // closed REFUSE_BATCH at a time: then the guest gets `limit` (retry
  // shortly), so one accept call never holds the instance for long.
  function acceptOne(listener: number): number {
    for (let refused = 0; refused < REFUSE_BATCH; refused++) {
      const fd = backend.accept(listener, peer);
      if (fd < 0) return fd;
      if (stats[STAT_OPEN]! < maxConnections) return adopt(fd, KIND_STREAM);
      table.abandon();
      backend.closeSocket(fd);
      stats[STAT_REFUSED]++;
      if (!refusedLogged) {
        refusedLogged = true;
        if (logLimit.admit(LOG_NOTICE)) {
          ctx.log('warn', 'host', `connection cap reached (maxConnections ${maxConnections}): closing new connections until some end`);
        }
      }
    }
    return fail(ErrorCode.Limit);
  }

  function other(op: string, r: number): number {
    if (r < 0 && codeOf(r) === ErrorCode.Other && logLimit.admit(LOG_OS_ERROR)) {
      ctx.log('warn', 'host', `tcp.${op}: unexpected OS error ${backend.lastOsError()}`);
    }
    return r;
  }

  function listenOn(addr: SocketAddress, backlog: number): number {
    if (!limits.listen.some((allowed) => allowed.equals(addr))) {
      ctx.denied('listen', addr, listenRule);
      return fail(ErrorCode.Denied);
    }
    if (backlog === 0) return fail(ErrorCode.Invalid);
    const fd = backend.listen(addr, Math.min(backlog, limits.maxBacklog), limits.sharedListen);
    if (fd < 0) return other('listen', fd);
    const h = adopt(fd, KIND_LISTENER);
    if (h >= 0) ctx.listening(addr.clone());
    return h;
  }

  function connectTo(addr: SocketAddress): number {
    if (!limits.connectAllowed(addr)) {
      ctx.denied('connect', addr, 'no outbound rule allows it');
      return fail(ErrorCode.Denied);
    }
    if (stats[STAT_OPEN]! >= maxConnections) return fail(ErrorCode.Limit);
    const fd = backend.connect(addr);
    return fd < 0 ? other('connect', fd) : adopt(fd, KIND_STREAM);
  }

  function closeHandle(h: number): number {
    const slot = table.lookup(h);
    if (slot < 0) return fail(ErrorCode.BadHandle);
    if (table.kind[slot] === KIND_STREAM) {
      stats[STAT_OPEN]--;
      if (stats[STAT_OPEN]! < maxConnections) refusedLogged = false;
    }
    const fd = table.remove(slot);
    if (fd >= 0) backend.closeSocket(fd);
    return 0;
  }

  function address(h: number, retptr: number, ofPeer: boolean): void {
    retptr >>>= 0;
    const slot = ofPeer ? stream(h) : table.lookup(h);
    let r = slot < 0 ? fail(ErrorCode.BadHandle) : 0;
    if (r === 0) r = ofPeer ? backend.peerAddress(table.fds[slot]!, peer) : backend.localAddress(table.fds[slot]!, peer);
    // result<socket-address, error-code>: size 22, align 2; payload at 2.
    mem.sync();
    mem.checkArea(retptr, 22, 2);
    mem.u8[retptr] = r >= 0 ? 0 : 1;
    if (r >= 0) lower(retptr + 2, peer);
    else mem.u8[retptr + 2] = codeOf(other(ofPeer ? 'peer-address' : 'local-address', r));
  }

  return {
    listen(family: number, a0: number, a1: number, a2: number, a3: number, a4: number, a5: number,
      a6: number, a7: number, port: number, backlog: number, retptr: number): void {
      mem.sync(); // first in every import with an effect: it also refuses a call from inside cabi_realloc
      const addr = lift(family, [a0, a1, a2, a3, a4, a5, a6, a7], port);
      gate.enter();
      const r = listenOn(addr, backlog >>> 0);
      gate.leave();
      u32Result(retptr >>> 0, r);
    },

    accept(l: number, retptr: number): void {
      mem.sync();
      retptr >>>= 0;
      const slot = table.lookup(l);
      let r: number;
      if (slot < 0 || (table.kind[slot] !== KIND_LISTENER && table.kind[slot] !== KIND_DRAINED)) r = fail(ErrorCode.BadHandle);
      else if (table.kind[slot] === KIND_DRAINED) r = fail(ErrorCode.WouldBlock); // draining: no new connections
      else if (table.registered[slot] && (table.interest[slot]! & INTEREST_READABLE) && !table.readReady[slot]) {
        r = fail(ErrorCode.WouldBlock);
      } else {
        gate.enter();
        const fd = acceptOne(table.fds[slot]!);
        gate.leave();
        if (fd >= 0) {
          r = fd;
          stats[STAT_ACCEPTED]++;
        } else {
          if (codeOf(fd) === ErrorCode.WouldBlock) table.readReady[slot] = 0;
          r = other('accept', fd);
        }
      }
      // result<tuple<handle, socket-address>, error-code>: size 28, align 4.
      mem.sync();
      mem.checkArea(retptr, 28, 4);
      if (r >= 0) {
        mem.u8[retptr] = 0;
        mem.u32[(retptr >>> 2) + 1] = r;
        lower(retptr + 8, peer);
      } else {
        mem.u8[retptr] = 1;
        mem.u8[retptr + 4] = codeOf(r);
      }
    },

    connect(family: number, a0: number, a1: number, a2: number, a3: number, a4: number, a5: number,
      a6: number, a7: number, port: number, retptr: number): void {
      mem.sync();
      const addr = lift(family, [a0, a1, a2, a3, a4, a5, a6, a7], port);
      gate.enter();
      const r = connectTo(addr);
      gate.leave();
      u32Result(retptr >>> 0, r);
    },

    recv(s: number, max: number, retptr: number): void {
      retptr >>>= 0;
      mem.sync();
      mem.checkArea(retptr, 12, 4);
      const slot = stream(s);
      let r: number;
      let ptr = 0;
      max >>>= 0;
      if (slot < 0) r = fail(ErrorCode.BadHandle);
      else if (max === 0) r = fail(ErrorCode.Invalid);
      else if (table.registered[slot] && (table.interest[slot]! & INTEREST_READABLE) && !table.readReady[slot]) {
        // Drained since the last event; the next readable event sets it again.
        r = fail(ErrorCode.WouldBlock);
      } else {
        const len = Math.min(max, maxRecv);
        ptr = mem.alloc(len, 1);
        r = backend.recv(table.fds[slot]!, mem.base + ptr, len);
        if (r >= 0) {
          table.active[slot] = clock.nowMs;
          // A short read means the socket buffer is empty: any later data
          // brings a new edge, so the next recv need not ask the kernel.
          // Not once the peer has closed: end of stream brings no new edge.
          if (r < len && r > 0 && !table.peerClosed[slot]) table.readReady[slot] = 0;
          stats[STAT_BYTES_IN] += r;
        } else {
          if (codeOf(r) === ErrorCode.WouldBlock) table.readReady[slot] = 0;
          mem.release(ptr, len, 1);
          r = other('recv', r);
        }
      }
      // result<list<u8>, error-code>: size 12, align 4.
      const u32 = mem.u32;
      if (r >= 0) {
        mem.u8[retptr] = 0;
        u32[(retptr >>> 2) + 1] = ptr;
        u32[(retptr >>> 2) + 2] = r;
      } else {
        mem.u8[retptr] = 1;
        mem.u8[retptr + 4] = codeOf(r);
      }
    },

    send(s: number, ptr: number, len: number, retptr: number): void {
      ptr >>>= 0;
      len >>>= 0;
      const slot = stream(s);
      let r: number;
      if (slot < 0) r = fail(ErrorCode.BadHandle);
      else {
        mem.sync();
        mem.check(ptr, len);
        if (len === 0) r = 0;
        else if (table.registered[slot] && (table.interest[slot]! & INTEREST_WRITABLE) && !table.writeReady[slot]) {
          r = fail(ErrorCode.WouldBlock);
        } else {
          r = backend.send(table.fds[slot]!, mem.base + ptr, len);
          if (r >= 0) {
            table.active[slot] = clock.nowMs;
            if (r < len) table.writeReady[slot] = 0;
            stats[STAT_BYTES_OUT] += r;
          } else {
            if (codeOf(r) === ErrorCode.WouldBlock) table.writeReady[slot] = 0;
            r = other('send', r);
          }
        }
      }
      u32Result(retptr >>> 0, r);
    },

    shutdown(s: number, how: number, retptr: number): void {
      mem.sync();
      how >>>= 0;
      if (how > 2) throw new GuestTrap(`invalid shutdown-how ${how}`);
      const slot = stream(s);
      unit(retptr >>> 0, slot < 0 ? fail(ErrorCode.BadHandle) : other('shutdown', backend.shutdown(table.fds[slot]!, how)));
    },

    close(h: number, retptr: number): void {
      mem.sync();
      gate.enter();
      const r = closeHandle(h);
      gate.leave();
      unit(retptr >>> 0, r);
    },

    'local-address'(h: number, retptr: number): void {
      address(h, retptr, false);
    },

    'peer-address'(s: number, retptr: number): void {
      address(s, retptr, true);
    },
  };
}
