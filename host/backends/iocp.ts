/**
 * The Windows backend: socket readiness on top of an I/O completion port,
 * the way mio (src/sys/windows/selector.rs, afd.rs) and wepoll do it.
 *
 * Where readiness comes from. Windows has no epoll; what select() and
 * WSAPoll are built on is the AFD driver's poll request (IOCTL_AFD_POLL).
 * Sent with NtDeviceIoControlFile on a handle to `\Device\Afd\...` that is
 * associated with the completion port, it completes (one packet on the port)
 * as soon as one of the requested events holds, at once if one holds
 * already. One request per socket, one packet per request: a one-shot,
 * level-checked poll. GetQueuedCompletionStatusEx reaps many packets per call.
 *
 * Edge-triggered on top of one-shot (mio's scheme). Each registered socket
 * has `armed`, the directions (WIT interest bits) it wants to hear about. A
 * completion reports events and disarms the directions it reported; a
 * direction stays quiet until its consumer has drained it: the consumer
 * calls `drained()` (Backend.drained) on would-block and on a short read or
 * write, which arms the direction again and queues the socket. Before each
 * wait the queue is flushed: an idle socket with armed directions gets a new
 * request; a pending request that lacks an armed direction is cancelled
 * (NtCancelIoFileEx) and sent again once its cancellation is reaped. A
 * request checks the present state when it is sent, so readiness that came
 * between the would-block and the re-arm is reported, never missed.
 *
 * The waker is the completion port itself: PostQueuedCompletionStatus with
 * WAKE_KEY, from any thread (`wakeTarget` is the port's handle value).
 *
 * The selector is composed with Windows' sockets (win-sockets.ts, which
 * also shares one address between instances).
 *
 * Differences from mio/wepoll, on purpose: one AFD handle per instance (they
 * spread sockets over AFD handles of 32): the handle table records only a
 * few backend descriptors, for the supervisor to close if the worker dies.
 */
import { addressOf, bigAddressOf, viewOf } from '../ffi/native-memory.js';
import * as w from '../ffi/win32.js';
import { NTSTATUS, WSA, ntSuccess } from '../ffi/errors-win32.js';
import {
  INTEREST_READABLE,
  INTEREST_WRITABLE,
  READY_ERROR,
  READY_HANG_UP,
  READY_READABLE,
  READY_READ_CLOSED,
  READY_WRITABLE,
} from '../generated/contract.js';
import { ALREADY_REGISTERED, NOT_REGISTERED, compose, type BackendModule, type BackendOptions, type Selector } from './backend.js';
import type { SocketAddress } from './address.js';
import { WinErrors, WinSocketState, WinSockets, unpublish } from './win-sockets.js';

// Completion keys: the AFD handle's packets, and the waker's.
const AFD_KEY = 1;
const WAKE_KEY = 2;
const MAX_EVENTS = 1024;
const { WSAENOTSOCK } = WSA.value;
// How long close() waits for cancelled requests before it leaks their memory.
const CLOSE_REAP_MS = 2000;

// AFD events per direction (as mio): what a readable or writable interest asks for.
const READ_EVENTS = w.AFD_POLL_RECEIVE | w.AFD_POLL_ACCEPT | w.AFD_POLL_DISCONNECT | w.AFD_POLL_ABORT | w.AFD_POLL_CONNECT_FAIL;
const WRITE_EVENTS = w.AFD_POLL_SEND | w.AFD_POLL_ABORT | w.AFD_POLL_CONNECT_FAIL;

function afdEvents(directions: number): number {
  // AFD_POLL_LOCAL_CLOSE: a request also ends when the socket is closed.
  let ev = w.AFD_POLL_LOCAL_CLOSE;
  if (directions & INTEREST_READABLE) ev |= READ_EVENTS;
  if (directions & INTEREST_WRITABLE) ev |= WRITE_EVENTS;
  return ev;
}

function readiness(ev: number): number {
  let ready = 0;
  if (ev & (w.AFD_POLL_RECEIVE | w.AFD_POLL_ACCEPT)) ready |= READY_READABLE;
  if (ev & w.AFD_POLL_SEND) ready |= READY_WRITABLE;
  if (ev & w.AFD_POLL_DISCONNECT) ready |= READY_READABLE | READY_READ_CLOSED;
  if (ev & w.AFD_POLL_ABORT) ready |= READY_HANG_UP | READY_READABLE | READY_WRITABLE;
  if (ev & w.AFD_POLL_CONNECT_FAIL) ready |= READY_ERROR | READY_READABLE | READY_WRITABLE;
  return ready;
}

function reportedDirections(ev: number): number {
  return (ev & READ_EVENTS ? INTEREST_READABLE : 0) | (ev & WRITE_EVENTS ? INTEREST_WRITABLE : 0);
}

// ---- memory the kernel writes after the call returns ---------------------------------------

// Per request: IO_STATUS_BLOCK (16 bytes) then AFD_POLL_INFO (32), as u32 words.
const SLOT_BYTES = w.IO_STATUS_BLOCK_SIZE + w.AFD_POLL_INFO_SIZE;
const SLOT_WORDS = SLOT_BYTES / 4;
const CHUNK_SLOTS = 64;
const IOSB_STATUS = 0;
const INFO_TIMEOUT = 4; // i64, two words
const INFO_COUNT = 6;
const INFO_EXCLUSIVE = 7;
const INFO_HANDLE = 8; // two words
const INFO_EVENTS = 10;
const INFO_STATUS = 11;

interface Chunk {
  readonly ptr: unknown;
  readonly base: number;
  readonly u32: Uint32Array;
}

/**
 * One IO_STATUS_BLOCK + AFD_POLL_INFO per poll request, in process-heap
 * memory.
 *
 * SAFETY: the kernel writes a request's IO_STATUS_BLOCK and AFD_POLL_INFO
 * when the request completes, which may be long after NtDeviceIoControlFile
 * returned, after a cancel, after the socket's close. Node Buffers are not
 * fit for that (koffi: only stable pointers may be kept by native code), so
 * the blocks are HeapAlloc memory, which neither the GC nor a worker's exit
 * frees. A slot returns to the free list only once its request's completion
 * has been reaped from the port (Iocp.feed); chunks are freed only by
 * Iocp.close once no request is outstanding. A worker that dies with
 * requests outstanding leaks its chunks (3 KiB each) rather than let the
 * kernel write into freed memory.
 */
class RequestBlocks {
  private readonly heap = w.GetProcessHeap() as number;
  readonly chunks: Chunk[] = [];
  private readonly free: number[] = [];

  acquire(): number {
    if (this.free.length === 0) this.grow();
    return this.free.pop()!;
  }

  release(slot: number): void {
    this.free.push(slot);
  }

  chunk(slot: number): Chunk {
    return this.chunks[(slot / CHUNK_SLOTS) | 0]!;
  }

  /** Absolute address of the slot's IO_STATUS_BLOCK (its AFD_POLL_INFO follows). */
  address(slot: number): number {
    return this.chunk(slot).base + (slot % CHUNK_SLOTS) * SLOT_BYTES;
  }

  private grow(): void {
    const bytes = SLOT_BYTES * CHUNK_SLOTS;
    const ptr = w.HeapAlloc(this.heap, w.HEAP_ZERO_MEMORY, bytes);
    if (ptr === null) throw new Error('wasmux: HeapAlloc failed for AFD poll blocks');
    const first = this.chunks.length * CHUNK_SLOTS;
    this.chunks.push({ ptr, base: addressOf(ptr), u32: new Uint32Array(viewOf(ptr, bytes)) });
    for (let s = first + CHUNK_SLOTS - 1; s >= first; s--) this.free.push(s);
  }

  /** Only when no request is outstanding (see SAFETY above). */
  freeAll(): void {
    for (const c of this.chunks) w.HeapFree(this.heap, 0, c.ptr);
    this.chunks.length = 0;
    this.free.length = 0;
  }
}

// ---- one registered socket -------------------------------------------------------------------

const IDLE = 0; // no request outstanding
const PENDING = 1; // a request is outstanding for `pending`
const CANCELLED = 2; // its cancellation is under way; the packet is still to come

class SockState {
  key = 0;
  interest = 0;
  /** Directions to hear about (WIT interest bits); disarmed when reported, armed again when drained. */
  armed = 0;
  /** Directions the outstanding request asks for. */
  pending = 0;
  status = IDLE;
  queued = false;
  /** Deregistered: freed when its outstanding request is reaped. */
  deleted = false;

  constructor(
    readonly sock: number,
    readonly base: number,
    readonly slot: number,
  ) {}
}

class IocpSelector implements Selector {
  readonly ownDescriptors: readonly number[];
  readonly wakeTarget: number;
  private readonly port: number;
  private readonly afd: number;
  private readonly blocks = new RequestBlocks();
  private readonly bySocket = new Map<number, SockState>();
  private readonly bySlot: (SockState | null)[] = [];
  private readonly updates: SockState[] = [];
  /** Sockets whose request was refused at once: reported as an error by the next wait. */
  private readonly refused: SockState[] = [];
  /** Requests sent whose completion has not been reaped yet. */
  private outstanding = 0;
  private closed = false;
  private readonly entries = Buffer.alloc(w.OVERLAPPED_ENTRY_SIZE * MAX_EVENTS);
  private readonly entries32 = new Uint32Array(this.entries.buffer, this.entries.byteOffset, this.entries.length >>> 2);
  private readonly removed = Buffer.alloc(4);
  private readonly cancelIosb = Buffer.alloc(w.IO_STATUS_BLOCK_SIZE);
  private readonly baseOut = Buffer.alloc(8);
  private readonly baseLen = Buffer.alloc(4);
  private readonly soError = Buffer.alloc(4);
  private readonly soErrorLen = Buffer.alloc(4);

  constructor(
    private readonly errors: WinErrors,
    private readonly known: WinSocketState,
  ) {
    const port = w.CreateIoCompletionPort(-1, 0, 0, 0) as number;
    if (port === 0) throw new Error(`CreateIoCompletionPort failed: Win32 error ${w.GetLastError()}`);
    const afd = openAfd(port);
    if (typeof afd === 'string') {
      w.CloseHandle(port);
      throw new Error(afd);
    }
    this.port = port;
    this.afd = afd;
    this.wakeTarget = port;
    this.ownDescriptors = [port, afd];
  }

  // ---- selector -------------------------------------------------------------------------

  register(sock: number, key: number, interest: number): number {
    if (this.bySocket.has(sock)) return ALREADY_REGISTERED;
    // AFD polls the base provider's socket (a layered provider may wrap it).
    this.baseLen.writeUInt32LE(0, 0);
    if (w.WSAIoctl(sock, w.SIO_BASE_HANDLE, null, 0, this.baseOut, 8, this.baseLen, null, null) !== 0) return this.errors.wsa();
    const state = new SockState(sock, Number(this.baseOut.readBigInt64LE(0)), this.blocks.acquire());
    this.bySlot[state.slot] = state;
    this.bySocket.set(sock, state);
    this.arm(state, key, interest);
    return 0;
  }

  reregister(sock: number, key: number, interest: number): number {
    const state = this.bySocket.get(sock);
    if (!state) return NOT_REGISTERED;
    this.arm(state, key, interest);
    return 0;
  }

  deregister(sock: number): number {
    const state = this.bySocket.get(sock);
    if (!state) return NOT_REGISTERED;
    this.bySocket.delete(sock);
    this.retire(state);
    return 0;
  }

  private arm(state: SockState, key: number, interest: number): void {
    state.key = key;
    state.interest = interest;
    // Every direction armed: readiness present now is reported as a new edge.
    state.armed = interest;
    this.enqueue(state);
  }

  // The consumer found a direction drained (Backend.drained): arm its poll again.
  drained(sock: number, interest: number): void {
    const state = this.bySocket.get(sock);
    if (!state) return;
    const add = interest & state.interest;
    if ((state.armed & add) === add) return;
    state.armed |= add;
    this.enqueue(state);
  }

  private enqueue(state: SockState): void {
    if (state.queued) return;
    state.queued = true;
    this.updates.push(state);
  }

  private flush(): void {
    const q = this.updates;
    for (let i = 0; i < q.length; i++) {
      const state = q[i]!;
      state.queued = false;
      if (state.deleted) continue;
      if (state.status === PENDING) {
        // The outstanding request may complete for a direction no longer
        // wanted (filtered then); it must be replaced only if it misses one.
        if ((state.armed & ~state.pending) !== 0) this.cancel(state);
      } else if (state.status === IDLE && state.armed !== 0) {
        this.submit(state);
      }
    }
    q.length = 0;
  }

  private submit(state: SockState): void {
    const { u32 } = this.blocks.chunk(state.slot);
    const i = (state.slot % CHUNK_SLOTS) * SLOT_WORDS;
    u32[i + IOSB_STATUS] = w.STATUS_PENDING;
    u32[i + INFO_TIMEOUT] = 0xffffffff; // no timeout: INT64_MAX
    u32[i + INFO_TIMEOUT + 1] = 0x7fffffff;
    u32[i + INFO_COUNT] = 1;
    u32[i + INFO_EXCLUSIVE] = 0;
    u32[i + INFO_HANDLE] = state.base >>> 0;
    u32[i + INFO_HANDLE + 1] = Math.floor(state.base / 0x100000000);
    u32[i + INFO_EVENTS] = afdEvents(state.armed);
    u32[i + INFO_STATUS] = 0;
    const iosb = this.blocks.address(state.slot);
    const info = iosb + w.IO_STATUS_BLOCK_SIZE;
    // SAFETY: `iosb` and `info` are this state's slot in RequestBlocks (heap
    // memory); the slot is neither freed nor reused until feed() has reaped
    // this request's packet. The apc context (slot + 1, never 0) comes back
    // as the packet's lpOverlapped and names the slot.
    const st = w.NtDeviceIoControlFile(
      this.afd,
      0,
      0,
      state.slot + 1,
      iosb,
      w.IOCTL_AFD_POLL,
      info,
      w.AFD_POLL_INFO_SIZE,
      info,
      w.AFD_POLL_INFO_SIZE,
    ) as number;
    if (st === w.STATUS_PENDING || ntSuccess(st)) {
      // Success and pending alike queue a packet (the AFD handle does not skip the port on success).
      state.status = PENDING;
      state.pending = state.armed;
      this.outstanding++;
      return;
    }
    // Refused at once (no packet will come): the socket is broken. Report an
    // error event; the consumer's next call meets the socket's own error.
    this.errors.nt(st);
    state.armed = 0;
    this.refused.push(state);
  }

  private cancel(state: SockState): void {
    // STATUS_NOT_FOUND means the request completed just before: its packet
    // is queued all the same. Either way exactly one packet is still to come.
    w.NtCancelIoFileEx(this.afd, this.blocks.address(state.slot), this.cancelIosb);
    state.status = CANCELLED;
    state.pending = 0;
  }

  /** Deregistration: the state lives on until its outstanding request is reaped. */
  private retire(state: SockState): void {
    state.deleted = true;
    if (state.status === PENDING) this.cancel(state);
    if (state.status === IDLE) this.free(state);
  }

  private free(state: SockState): void {
    this.bySlot[state.slot] = null;
    this.blocks.release(state.slot);
  }

  /** Takes a reaped request's result; returns the WIT readiness to report (0: none). */
  private feed(state: SockState): number {
    this.outstanding--;
    state.status = IDLE;
    state.pending = 0;
    if (state.deleted) {
      this.free(state);
      return 0;
    }
    const { u32 } = this.blocks.chunk(state.slot);
    const i = (state.slot % CHUNK_SLOTS) * SLOT_WORDS;
    const status = u32[i + IOSB_STATUS]!;
    let ready = 0;
    if (status === NTSTATUS.value.STATUS_CANCELLED) {
      // Replaced by a request for the armed directions (below).
    } else if (!ntSuccess(status)) {
      this.errors.nt(status);
      ready = READY_ERROR | READY_READABLE | READY_WRITABLE;
      state.armed = 0;
    } else if (u32[i + INFO_COUNT]! >= 1) {
      const ev = u32[i + INFO_EVENTS]!;
      if (ev & w.AFD_POLL_LOCAL_CLOSE) {
        // Closed by someone else than closeSocket (which deregisters first).
        if (this.bySocket.get(state.sock) === state) this.bySocket.delete(state.sock);
        state.deleted = true;
        this.free(state);
        return 0;
      }
      const wanted = ev & afdEvents(state.interest);
      ready = readiness(wanted);
      state.armed &= ~reportedDirections(wanted);
      // The peer's FIN on a socket shut down for sending here: both
      // directions are closed (AFD has no event for that).
      if (wanted & w.AFD_POLL_DISCONNECT && this.known.sendShut.has(state.sock)) ready |= READY_HANG_UP;
      // A failed connect: AFD says so once; keep its error for the next recv or send.
      if (wanted & w.AFD_POLL_CONNECT_FAIL) this.keepConnectError(state.sock);
    }
    if (state.armed !== 0) this.enqueue(state);
    return ready;
  }

  private keepConnectError(sock: number): void {
    const len = this.soErrorLen;
    len.writeInt32LE(4, 0);
    if (w.getsockopt(sock, w.SOL_SOCKET, w.SO_ERROR, this.soError, len) !== 0) return;
    const e = this.soError.readInt32LE(0);
    if (e !== 0) this.known.pendingError.set(sock, this.errors.wsaCode(e));
  }

  wait(out: Uint32Array, max: number, timeoutMs: number): number {
    if (this.closed) return 0;
    this.flush();
    let count = 0;
    while (this.refused.length > 0 && count < max) {
      const state = this.refused.pop()!;
      if (state.deleted) continue;
      out[2 * count] = state.key;
      out[2 * count + 1] = READY_ERROR | READY_READABLE | READY_WRITABLE;
      count++;
    }
    if (count > 0) return count;

    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : 0;
    let timeout = timeoutMs;
    const e32 = this.entries32;
    for (;;) {
      const ok = w.GetQueuedCompletionStatusEx(
        this.port,
        this.entries,
        Math.min(max, MAX_EVENTS),
        this.removed,
        timeout < 0 ? w.INFINITE : timeout,
        0,
      );
      if (!ok) {
        if (w.GetLastError() !== w.WAIT_TIMEOUT) this.errors.win32('GetQueuedCompletionStatusEx');
        return 0;
      }
      const n = this.removed.readUInt32LE(0);
      let woke = false;
      for (let k = 0; k < n; k++) {
        // OVERLAPPED_ENTRY: key @0, lpOverlapped (our apc context) @8.
        if (e32[8 * k] === WAKE_KEY) {
          woke = true;
          continue;
        }
        const state = this.bySlot[e32[8 * k + 2]! - 1];
        if (!state) continue;
        const ready = this.feed(state);
        if (ready === 0) continue;
        out[2 * count] = state.key;
        out[2 * count + 1] = ready;
        count++;
      }
      if (count > 0 || woke || timeout === 0) return count;
      // Only cancellations and stale packets: send what they left armed, wait on.
      this.flush();
      if (this.refused.length > 0) return this.wait(out, max, 0);
      if (timeout > 0) {
        timeout = Math.ceil(deadline - performance.now());
        if (timeout <= 0) return 0;
      }
    }
  }

  forget(sock: number): void {
    const state = this.bySocket.get(sock);
    if (state) {
      this.bySocket.delete(sock);
      this.retire(state);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const state of this.bySocket.values()) this.retire(state);
    this.bySocket.clear();
    // Reap every outstanding request (all cancelled now) before freeing the
    // memory they write into.
    const until = performance.now() + CLOSE_REAP_MS;
    const e32 = this.entries32;
    while (this.outstanding > 0 && performance.now() < until) {
      if (!w.GetQueuedCompletionStatusEx(this.port, this.entries, MAX_EVENTS, this.removed, 50, 0)) {
        if (w.GetLastError() !== w.WAIT_TIMEOUT) break;
        continue;
      }
      const n = this.removed.readUInt32LE(0);
      for (let k = 0; k < n; k++) {
        if (e32[8 * k] === WAKE_KEY) continue;
        const state = this.bySlot[e32[8 * k + 2]! - 1];
        if (state) this.feed(state);
      }
    }
    w.CloseHandle(this.afd);
    w.CloseHandle(this.port);
    // SAFETY: with requests still outstanding the blocks stay allocated (leaked).
    if (this.outstanding === 0) this.blocks.freeAll();
  }
}

/** A handle to the AFD driver, associated with `port`; or why it failed. */
function openAfd(port: number): number | string {
  // Opening \Device\Afd with no extended attributes gives a handle that
  // talks to the driver without being a socket (wepoll, mio). The buffers
  // are read during the call only.
  const name = Buffer.from('\\Device\\Afd\\Wasmux', 'utf16le');
  const unicode = Buffer.alloc(w.UNICODE_STRING_SIZE);
  unicode.writeUInt16LE(name.length, 0);
  unicode.writeUInt16LE(name.length, 2);
  unicode.writeBigUInt64LE(bigAddressOf(name), 8);
  const attrs = Buffer.alloc(w.OBJECT_ATTRIBUTES_SIZE);
  attrs.writeUInt32LE(w.OBJECT_ATTRIBUTES_SIZE, 0);
  attrs.writeBigUInt64LE(bigAddressOf(unicode), 16);
  const handle = Buffer.alloc(8);
  const iosb = Buffer.alloc(w.IO_STATUS_BLOCK_SIZE);
  const st = w.NtCreateFile(
    handle,
    w.SYNCHRONIZE,
    attrs,
    iosb,
    null,
    0,
    w.FILE_SHARE_READ | w.FILE_SHARE_WRITE,
    w.FILE_OPEN,
    0,
    null,
    0,
  ) as number;
  if (st !== w.STATUS_SUCCESS) return `NtCreateFile(\\Device\\Afd) failed: NTSTATUS 0x${(st >>> 0).toString(16)}`;
  const afd = Number(handle.readBigInt64LE(0));
  if (
    w.CreateIoCompletionPort(afd, port, AFD_KEY, 0) === 0 ||
    !w.SetFileCompletionNotificationModes(afd, w.FILE_SKIP_SET_EVENT_ON_HANDLE)
  ) {
    const e = w.GetLastError();
    w.CloseHandle(afd);
    return `associating the AFD handle with the completion port failed: Win32 error ${e}`;
  }
  return afd;
}

// Main thread: the sockets half that reserve() uses.
let mainSockets: WinSockets | null = null;

export const iocp: BackendModule = {
  name: 'iocp',
  open(options: BackendOptions) {
    const errors = new WinErrors();
    const known = new WinSocketState();
    return compose('iocp', new IocpSelector(errors, known), new WinSockets(errors, known, options));
  },
  wake(target: number) {
    w.PostQueuedCompletionStatus(target, 0, WAKE_KEY, 0);
  },
  closeDescriptor(fd: number) {
    unpublish(fd);
    // Sockets and the backend's own handles (port, AFD) come here alike.
    if (w.closesocket(fd) !== 0 && w.WSAGetLastError() === WSAENOTSOCK) w.CloseHandle(fd);
  },
  reserve(addr: SocketAddress, out: SocketAddress) {
    mainSockets ??= new WinSockets(new WinErrors(), new WinSocketState(), null);
    return mainSockets.reserve(addr, out);
  },
  // Every instance listens on a duplicate of the one reserved socket, which
  // the supervisor holds for the plugin's life: nothing to hand over.
  inherit() {
    return -1;
  },
};
