/**
 * The socket half of the backend contract on Windows (Winsock through
 * koffi), the counterpart of posix-sockets.ts. Every socket is overlapped
 * (so the AFD driver can poll it), non-blocking (FIONBIO) and not inherited
 * by child processes.
 *
 * Readiness on Windows is one-shot (see iocp.ts): whoever polls must be told
 * when the consumer has drained a direction. The consumer says so
 * (Backend.drained, called by sandbox/instance-host.ts on would-block and on
 * a short read or write), and the IOCP backend re-arms that direction there,
 * at exactly the points where mio's IoSource re-registers.
 */
import * as w from '../ffi/win32.js';
import { WSA, ntStatusName, ntStatusToErrorCode, wsaName, wsaToErrorCode } from '../ffi/errors-win32.js';
import { ErrorCode, INTEREST_READABLE, INTEREST_WRITABLE } from '../generated/contract.js';
import { fail, type BackendOptions } from './backend.js';
import type { SocketAddress } from './address.js';

// Winsock 2.2, once per thread that loads this module (WSAStartup counts its
// callers; the process ends without WSACleanup).
{
  const data = Buffer.alloc(w.WSADATA_SIZE);
  const r = w.WSAStartup(0x0202, data);
  if (r !== 0) throw new Error(`wasmux: WSAStartup failed (${wsaName(r)})`);
}

const { WSAEWOULDBLOCK, WSAEACCES, WSAENOTCONN } = WSA.value;
const MAX_IO = 0x7fffffff; // recv/send take an int length

export class WinSockets {
  // Scratch for sockaddr in/out, lengths and option values; one set per
  // backend (one per thread), reused by every call.
  private readonly sa = Buffer.alloc(w.SOCKADDR_MAX);
  private readonly saLen = Buffer.alloc(4);
  private readonly one = Buffer.from([1, 0, 0, 0]);
  private readonly sendBuffer = Buffer.alloc(4);
  private lastError = '';
  /** BackendOptions.creating (a private cell when the caller keeps no registry). */
  private readonly creating: Float64Array;

  constructor(options: BackendOptions | null) {
    if (options) this.sendBuffer.writeInt32LE(options.sendBufferBytes, 0);
    this.creating = options?.creating ?? new Float64Array(1);
  }

  /** Records a socket being created (BackendOptions.creating), before any further call. */
  protected created(s: number): number {
    this.creating[0] = s;
    return s;
  }

  /** Closes a socket being created that its caller never took over: the record goes first. */
  protected discard(s: number): void {
    this.creating[0] = -1;
    w.closesocket(s);
  }

  /** Records the thread's last Winsock error and translates it. */
  protected failWsa(): number {
    const e = w.WSAGetLastError();
    this.lastError = wsaName(e);
    return fail(wsaToErrorCode(e));
  }

  protected failNt(status: number): number {
    this.lastError = ntStatusName(status);
    return fail(ntStatusToErrorCode(status));
  }

  protected failWin32(what: string): number {
    this.lastError = `${what}: Win32 error ${w.GetLastError()}`;
    return fail(ErrorCode.Other);
  }

  lastOsError(): string {
    return this.lastError;
  }

  /** A new overlapped, non-blocking, non-inheritable TCP socket, or fail(). */
  protected socket(v6: boolean): number {
    const s = w.WSASocketW(v6 ? w.AF_INET6 : w.AF_INET, w.SOCK_STREAM, w.IPPROTO_TCP, null, 0,
      w.WSA_FLAG_OVERLAPPED | w.WSA_FLAG_NO_HANDLE_INHERIT) as number;
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
  exclusiveBound(addr: SocketAddress): number {
    const s = this.socket(addr.v6);
    if (s < 0) return s;
    const len = this.encode(addr);
    let r = 0;
    if (w.setsockopt(s, w.SOL_SOCKET, w.SO_EXCLUSIVEADDRUSE, this.one, 4) !== 0 ||
      (addr.v6 && w.setsockopt(s, w.IPPROTO_IPV6, w.IPV6_V6ONLY, this.one, 4) !== 0)) {
      r = this.failWsa();
    } else if (w.bind(s, this.sa, len) !== 0) {
      // Windows reports "another socket holds this address exclusively" as WSAEACCES.
      const e = w.WSAGetLastError();
      this.lastError = wsaName(e);
      r = fail(e === WSAEACCES ? ErrorCode.AddressInUse : wsaToErrorCode(e));
    }
    if (r < 0) {
      this.discard(s);
      return r;
    }
    return s;
  }

  /** Listens on `s` (a socket being created); on failure closes it. */
  protected startListening(s: number, backlog: number): number {
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
      this.lastError = wsaName(e);
      // A queued connection that died before accept: WSAECONNRESET on
      // Windows, WSAENOTCONN under wine. Both mean what ECONNABORTED means.
      return fail(e === WSAENOTCONN ? ErrorCode.Reset : wsaToErrorCode(e));
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
        this.lastError = wsaName(e);
        this.discard(s);
        return fail(wsaToErrorCode(e));
      }
    }
    return s;
  }

  recv(sock: number, ptr: number, len: number): number {
    const n = w.recv(sock, ptr, Math.min(len, MAX_IO), 0) as number;
    return n >= 0 ? n : this.failWsa();
  }

  send(sock: number, ptr: number, len: number): number {
    const n = w.send(sock, ptr, Math.min(len, MAX_IO), 0) as number;
    return n >= 0 ? n : this.failWsa();
  }

  shutdown(sock: number, how: number): number {
    // WIT shutdown-how (receive, send, both) is SD_RECEIVE, SD_SEND, SD_BOTH.
    return w.shutdown(sock, how) !== 0 ? this.failWsa() : 0;
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
