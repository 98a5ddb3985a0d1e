/**
 * The socket half of a backend on Windows (backend.ts Sockets; Winsock
 * through koffi), the counterpart of socket-ops.ts. Every socket is
 * overlapped (so the AFD driver can poll it), non-blocking (FIONBIO) and
 * not inherited by child processes.
 *
 * Several instances on one address: Windows has no SO_REUSEPORT (its
 * SO_REUSEADDR lets any process bind over a listener, with no defined
 * distribution). So `reserve()` (main thread) binds the one real socket for
 * the address, with SO_EXCLUSIVEADDRUSE, and publishes it in the process
 * environment; each instance's `listen(addr, backlog, shared)` takes its own
 * duplicate (WSADuplicateSocketW: closing one never closes another's) and
 * listens on it (the first listen opens the accept queue; until then
 * connections are refused, as with epoll's reservation). Every instance
 * polls the same accept queue: a new connection wakes all of them, one
 * accepts it, the others meet would-block (epoll's thundering herd without
 * EPOLLEXCLUSIVE). The queue lives as long as the reservation: until the
 * supervisor closes it at the end of a stop.
 */
import * as w from '../ffi/win32.js';
import { WSA, ntStatusName, ntStatusToErrorCode, wsaName, wsaToErrorCode } from '../ffi/errors-win32.js';
import { ErrorCode } from '../generated/contract.js';
import { fail, type BackendOptions, type Sockets } from './backend.js';
import { SocketAddress } from './address.js';

// Winsock 2.2, once per thread that loads this module (WSAStartup counts its
// callers; the process ends without WSACleanup).
{
  const data = Buffer.alloc(w.WSADATA_SIZE);
  const r = w.WSAStartup(0x0202, data);
  if (r !== 0) throw new Error(`wasmux: WSAStartup failed (${wsaName(r)})`);
}

const { WSAEWOULDBLOCK, WSAEACCES, WSAENOTCONN } = WSA.value;
const MAX_IO = 0x7fffffff; // recv/send take an int length

/**
 * Where a backend's halves record the error behind an `other` result
 * (Winsock, NTSTATUS or Win32), so that lastOsError() names it whichever
 * half failed.
 */
export class WinErrors {
  private last = '';

  /** Records the thread's last Winsock error and translates it. */
  wsa(): number {
    return this.wsaCode(w.WSAGetLastError());
  }

  wsaCode(e: number): number {
    this.last = wsaName(e);
    return fail(wsaToErrorCode(e));
  }

  nt(status: number): number {
    this.last = ntStatusName(status);
    return fail(ntStatusToErrorCode(status));
  }

  win32(what: string): number {
    this.last = `${what}: Win32 error ${w.GetLastError()}`;
    return fail(ErrorCode.Other);
  }

  name(): string {
    return this.last;
  }
}

/**
 * What Windows does not say twice about a socket, kept for both halves of
 * a backend (the selector learns it, the sockets answer with it).
 */
export class WinSocketState {
  /** Sockets shut down for sending here: with the peer's FIN as well, both directions are closed (hang-up). */
  readonly sendShut = new Set<number>();
  /**
   * A failed connect's error (a fail() result), which the contract has the
   * next recv or send return: AFD reports the failure once, and what recv
   * says afterwards differs (end of stream under wine, WSAENOTCONN on Windows).
   */
  readonly pendingError = new Map<number, number>();

  forget(sock: number): void {
    this.sendShut.delete(sock);
    this.pendingError.delete(sock);
  }
}

export class WinSockets implements Sockets {
  // Scratch for sockaddr in/out, lengths and option values; one set per
  // backend (one per thread), reused by every call.
  private readonly sa = Buffer.alloc(w.SOCKADDR_MAX);
  private readonly saLen = Buffer.alloc(4);
  private readonly one = Buffer.from([1, 0, 0, 0]);
  private readonly sendBuffer = Buffer.alloc(4);
  /** BackendOptions.creating (a private cell when the caller keeps no registry). */
  private readonly creating: Float64Array;

  constructor(
    private readonly errors: WinErrors,
    private readonly state: WinSocketState,
    options: BackendOptions | null,
  ) {
    if (options) this.sendBuffer.writeInt32LE(options.sendBufferBytes, 0);
    this.creating = options?.creating ?? new Float64Array(1);
  }

  /** Records a socket being created (BackendOptions.creating), before any further call. */
  private created(s: number): number {
    this.creating[0] = s;
    return s;
  }

  /** Closes a socket being created that its caller never took over: the record goes first. */
  private discard(s: number): void {
    this.creating[0] = -1;
    w.closesocket(s);
  }

  private failWsa(): number {
    return this.errors.wsa();
  }

  lastOsError(): string {
    return this.errors.name();
  }

  close(sock: number): void {
    this.state.forget(sock);
    w.closesocket(sock);
  }

  /** A new overlapped, non-blocking, non-inheritable TCP socket, or fail(). */
  private socket(v6: boolean): number {
    const s = w.WSASocketW(
      v6 ? w.AF_INET6 : w.AF_INET,
      w.SOCK_STREAM,
      w.IPPROTO_TCP,
      null,
      0,
      w.WSA_FLAG_OVERLAPPED | w.WSA_FLAG_NO_HANDLE_INHERIT,
    ) as number;
    if (s === w.INVALID_SOCKET) return this.failWsa();
    this.created(s);
    if (w.ioctlsocket(s, w.FIONBIO, this.one) !== 0) {
      const r = this.failWsa();
      this.discard(s);
      return r;
    }
    return s;
  }

  /** Per-connection options: no Nagle delay; the policy's send buffer. */
  private tune(s: number): void {
    w.setsockopt(s, w.IPPROTO_TCP, w.TCP_NODELAY, this.one, 4);
    if (this.sendBuffer.readInt32LE(0) > 0) w.setsockopt(s, w.SOL_SOCKET, w.SO_SNDBUF, this.sendBuffer, 4);
  }

  /**
   * A socket bound to `addr` that no other socket may bind while it lives
   * (SO_EXCLUSIVEADDRUSE: Windows' SO_REUSEADDR would let any other process
   * take the port over, and there is no SO_REUSEPORT). Not yet listening.
   */
  private exclusiveBound(addr: SocketAddress): number {
    const s = this.socket(addr.v6);
    if (s < 0) return s;
    const len = this.encode(addr);
    let r = 0;
    if (
      w.setsockopt(s, w.SOL_SOCKET, w.SO_EXCLUSIVEADDRUSE, this.one, 4) !== 0 ||
      (addr.v6 && w.setsockopt(s, w.IPPROTO_IPV6, w.IPV6_V6ONLY, this.one, 4) !== 0)
    ) {
      r = this.failWsa();
    } else if (w.bind(s, this.sa, len) !== 0) {
      // Windows reports "another socket holds this address exclusively" as WSAEACCES.
      const e = w.WSAGetLastError();
      r = this.errors.wsaCode(e);
      if (e === WSAEACCES) r = fail(ErrorCode.AddressInUse);
    }
    if (r < 0) {
      this.discard(s);
      return r;
    }
    return s;
  }

  listen(addr: SocketAddress, backlog: number, shared: boolean): number {
    if (shared) {
      const s = this.duplicateReserved(addr, backlog);
      if (s !== null) return s;
    }
    const s = this.exclusiveBound(addr);
    return s < 0 ? s : this.startListening(s, backlog);
  }

  /** This instance's own listening duplicate of the socket reserve() published for `addr`, or null. */
  private duplicateReserved(addr: SocketAddress, backlog: number): number | null {
    const published = readPublished(addr);
    if (published === null) return null;
    const info = Buffer.alloc(w.PROTOCOL_INFO_SIZE);
    if (w.WSADuplicateSocketW(published, w.GetCurrentProcessId(), info) !== 0) return this.failWsa();
    const s = w.WSASocketW(
      w.FROM_PROTOCOL_INFO,
      w.FROM_PROTOCOL_INFO,
      w.FROM_PROTOCOL_INFO,
      info,
      0,
      w.WSA_FLAG_OVERLAPPED | w.WSA_FLAG_NO_HANDLE_INHERIT,
    ) as number;
    if (s === w.INVALID_SOCKET) return this.failWsa();
    this.created(s);
    // A stale record could name a handle value reused by something else:
    // use the duplicate only if it is bound to exactly `addr`.
    const bound = new SocketAddress();
    if (w.ioctlsocket(s, w.FIONBIO, this.one) !== 0 || this.localAddress(s, bound) < 0 || !bound.equals(addr)) {
      this.discard(s);
      return null;
    }
    return this.startListening(s, backlog);
  }

  /**
   * BackendModule.reserve (main thread): the one real socket for `addr`,
   * bound with SO_EXCLUSIVEADDRUSE and published for the instances'
   * listen(); its resolved address in `out`.
   */
  reserve(addr: SocketAddress, out: SocketAddress): number {
    const s = this.exclusiveBound(addr);
    if (s < 0) return s;
    const r = this.localAddress(s, out);
    if (r < 0) {
      w.closesocket(s);
      return r;
    }
    const name = publishedName(out);
    w.SetEnvironmentVariableW(name, `${w.GetCurrentProcessId()}:${s}`);
    publishedBySocket.set(s, name);
    return s;
  }

  /** Listens on `s` (a socket being created); on failure closes it. */
  private startListening(s: number, backlog: number): number {
    if (w.listen(s, backlog) === 0) return s;
    const r = this.failWsa();
    this.discard(s);
    return r;
  }

  accept(listener: number, peer: SocketAddress): number {
    this.saLen.writeInt32LE(w.SOCKADDR_MAX, 0);
    const s = w.accept(listener, this.sa, this.saLen) as number;
    if (s === w.INVALID_SOCKET) {
      const e = w.WSAGetLastError();
      const r = this.errors.wsaCode(e);
      // A queued connection that died before accept: WSAECONNRESET on
      // Windows, WSAENOTCONN under wine. Both mean what ECONNABORTED means.
      return e === WSAENOTCONN ? fail(ErrorCode.Reset) : r;
    }
    // Non-blocking (FIONBIO) and overlapped come from the listener: an
    // accepted socket has its listening socket's properties (checked under
    // wine: recv on a fresh one says WSAEWOULDBLOCK). One call fewer per
    // connection, and under wine every call is a round trip to wineserver.
    this.created(s);
    this.tune(s);
    this.decode(peer);
    return s;
  }

  connect(addr: SocketAddress): number {
    const s = this.socket(addr.v6);
    if (s < 0) return s;
    this.tune(s);
    const len = this.encode(addr);
    if (w.connect(s, this.sa, len) !== 0) {
      const e = w.WSAGetLastError();
      if (e !== WSAEWOULDBLOCK) {
        this.discard(s);
        return this.errors.wsaCode(e);
      }
    }
    return s;
  }

  recv(sock: number, ptr: number, len: number): number {
    const n = w.recv(sock, ptr, Math.min(len, MAX_IO), 0) as number;
    if (n > 0) return n;
    // End of stream or a failure: a failed connect's own error first.
    if (this.state.pendingError.size !== 0) {
      const pending = this.state.pendingError.get(sock);
      if (pending !== undefined) return pending;
    }
    return n === 0 ? 0 : this.failWsa();
  }

  /** recv with MSG_PEEK (2): the bytes stay queued (the PROXY protocol header's end is found this way). */
  peek(sock: number, ptr: number, len: number): number {
    const n = w.recv(sock, ptr, Math.min(len, MAX_IO), 2) as number;
    if (n > 0) return n;
    if (this.state.pendingError.size !== 0) {
      const pending = this.state.pendingError.get(sock);
      if (pending !== undefined) return pending;
    }
    return n === 0 ? 0 : this.failWsa();
  }

  send(sock: number, ptr: number, len: number): number {
    const n = w.send(sock, ptr, Math.min(len, MAX_IO), 0) as number;
    if (n >= 0) return n;
    if (this.state.pendingError.size !== 0) {
      const pending = this.state.pendingError.get(sock);
      if (pending !== undefined) return pending;
    }
    return this.failWsa();
  }

  shutdown(sock: number, how: number): number {
    // WIT shutdown-how (receive, send, both) is SD_RECEIVE, SD_SEND, SD_BOTH.
    if (w.shutdown(sock, how) !== 0) return this.failWsa();
    if (how !== 0) this.state.sendShut.add(sock);
    return 0;
  }

  localAddress(sock: number, out: SocketAddress): number {
    this.saLen.writeInt32LE(w.SOCKADDR_MAX, 0);
    if (w.getsockname(sock, this.sa, this.saLen) !== 0) return this.failWsa();
    this.decode(out);
    return 0;
  }

  peerAddress(sock: number, out: SocketAddress): number {
    this.saLen.writeInt32LE(w.SOCKADDR_MAX, 0);
    if (w.getpeername(sock, this.sa, this.saLen) !== 0) return this.failWsa();
    this.decode(out);
    return 0;
  }

  private encode(addr: SocketAddress): number {
    const sa = this.sa;
    sa.fill(0);
    if (!addr.v6) {
      sa.writeUInt16LE(w.AF_INET, 0);
      sa.writeUInt16BE(addr.port, 2);
      for (let i = 0; i < 4; i++) sa[4 + i] = addr.groups[i]!;
      return 16;
    }
    sa.writeUInt16LE(w.AF_INET6, 0);
    sa.writeUInt16BE(addr.port, 2);
    for (let i = 0; i < 8; i++) sa.writeUInt16BE(addr.groups[i]!, 8 + 2 * i);
    return 28;
  }

  private decode(out: SocketAddress): void {
    const sa = this.sa;
    out.port = sa.readUInt16BE(2);
    if (sa.readUInt16LE(0) === w.AF_INET6) {
      out.v6 = true;
      for (let i = 0; i < 8; i++) out.groups[i] = sa.readUInt16BE(8 + 2 * i);
    } else {
      out.v6 = false;
      for (let i = 0; i < 4; i++) out.groups[i] = sa[4 + i]!;
      out.groups.fill(0, 4);
    }
  }
}

// ---- the listeners reserve() shares with the instances ----------------------------------------
// Published in the process environment (process-wide, readable from every
// thread): name per address, value "<pid>:<socket>". The pid guards against
// a child process that inherited the variable (its socket value means
// nothing there: sockets are created non-inheritable).

function publishedName(addr: SocketAddress): string {
  return `WASMUX_IOCP_LISTENER_${addr}`;
}

function readPublished(addr: SocketAddress): number | null {
  const buf = Buffer.alloc(128);
  const n = w.GetEnvironmentVariableW(publishedName(addr), buf, 64) as number;
  if (n === 0 || n >= 64) return null;
  const m = /^(\d+):(\d+)$/.exec(buf.toString('utf16le', 0, 2 * n));
  if (!m || Number(m[1]) !== w.GetCurrentProcessId()) return null;
  return Number(m[2]);
}

// Main thread only: the reservations this thread published, by socket.
const publishedBySocket = new Map<number, string>();

/** BackendModule.closeDescriptor's part: forgets the publication of a reservation being closed. */
export function unpublish(sock: number): void {
  const name = publishedBySocket.get(sock);
  if (name !== undefined) {
    w.SetEnvironmentVariableW(name, null);
    publishedBySocket.delete(sock);
  }
}
