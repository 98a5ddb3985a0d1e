import {
  tcp_listen, tcp_accept, tcp_connect, tcp_recv, tcp_send, tcp_shutdown, tcp_close,
  tcp_local_address, tcp_peer_address,
  RESULT_IS_ERR, RESULT_ACCEPT_HANDLE, RESULT_ACCEPT_ADDR, RESULT_ADDR_PAYLOAD,
  RESULT_LIST_PTR, RESULT_LIST_LEN,
} from "./bindings";
import { RET, lendBuffer, unlendBuffer, unitResult, u32Result } from "./abi";
import { IoError, fromWit } from "./error";
import { SocketAddress } from "./net";
import { Source } from "./poll";

export enum Shutdown { Receive = 0, Send = 1, Both = 2 }

// The error of the last call that returned null (errno-style, because
// AssemblyScript has no exceptions). Read it right after the failing call.
let lastErr: i32 = 0;

/** The IoError of the most recent SDK call that returned null. */
export function lastError(): i32 {
  return lastErr;
}

/** A listening TCP socket. */
export class TcpListener implements Source {
  constructor(readonly handle: u32) {}

  /** Listens on `address`. Returns null (see lastError()) on failure. */
  static bind(address: SocketAddress, backlog: u32 = 1024): TcpListener | null {
    tcp_listen(
      address.isV6 ? 1 : 0,
      address.flat(0), address.flat(1), address.flat(2), address.flat(3),
      address.flat(4), address.flat(5), address.flat(6), address.flat(7),
      address.port, backlog, RET);
    const h = u32Result();
    if (h < 0) { lastErr = h; return null; }
    return new TcpListener(<u32>h);
  }

  /**
   * Accepts one pending connection, or returns null: lastError() is
   * IoError.WouldBlock when none is pending (then wait for readable). The
   * peer's address is acceptedPeer() until the next accept.
   */
  accept(): TcpStream | null {
    tcp_accept(this.handle, RET);
    if (load<u8>(RET + RESULT_IS_ERR) != 0) {
      lastErr = fromWit(load<u8>(RET + RESULT_ACCEPT_HANDLE));
      return null;
    }
    acceptedAddress.loadFrom(RET + RESULT_ACCEPT_ADDR);
    return new TcpStream(load<u32>(RET + RESULT_ACCEPT_HANDLE));
  }

  /** The bound address (useful after binding port 0); null on failure. */
  localAddress(): SocketAddress | null {
    return addressResult(this.handle, false);
  }

  close(): i32 {
    tcp_close(this.handle, RET);
    return unitResult();
  }
}

// Where accept() decodes the peer's address: one for the instance, so that
// a stream is its handle and nothing more (a server may hold many).
const acceptedAddress = new SocketAddress();

/**
 * The peer of the stream the last successful accept() returned; it is
 * overwritten by the next accept: copy it (clone()) to keep it. Any time
 * later, a stream's peerAddress() asks the host.
 */
export function acceptedPeer(): SocketAddress {
  return acceptedAddress;
}

/** A connected TCP stream: its host handle. */
export class TcpStream implements Source {
  constructor(readonly handle: u32) {}

  /** Starts connecting; the stream is usable once writable. Null on failure. */
  static connect(address: SocketAddress): TcpStream | null {
    tcp_connect(
      address.isV6 ? 1 : 0,
      address.flat(0), address.flat(1), address.flat(2), address.flat(3),
      address.flat(4), address.flat(5), address.flat(6), address.flat(7),
      address.port, RET);
    const h = u32Result();
    if (h < 0) { lastErr = h; return null; }
    return new TcpStream(<u32>h);
  }

  /**
   * Receives up to `len` bytes straight into memory at `ptr`. Returns the
   * byte count, 0 at end of stream, or an IoError (WouldBlock: drained).
   */
  readRaw(ptr: usize, len: u32): i32 {
    if (len == 0) return IoError.Invalid;
    lendBuffer(ptr, len);
    tcp_recv(this.handle, len, RET);
    unlendBuffer();
    if (load<u8>(RET + RESULT_IS_ERR) != 0) return fromWit(load<u8>(RET + RESULT_LIST_PTR));
    const got = load<usize>(RET + RESULT_LIST_PTR);
    const n = load<u32>(RET + RESULT_LIST_LEN);
    // A host that ignores the lent buffer allocated elsewhere: move the data.
    if (got != ptr) {
      memory.copy(ptr, got, <usize>min(n, len));
      if (n > 0) heap.free(got);
    }
    return <i32>n;
  }

  /** Receives into `buf[offset..]`. See readRaw. */
  read(buf: Uint8Array, offset: i32 = 0): i32 {
    return this.readRaw(buf.dataStart + <usize>offset, <u32>(buf.length - offset));
  }

  /**
   * Sends `len` bytes from `ptr`. Returns how many the host took (maybe
   * fewer) or an IoError (WouldBlock: wait for writable).
   */
  writeRaw(ptr: usize, len: u32): i32 {
    tcp_send(this.handle, ptr, len, RET);
    return u32Result();
  }

  /** Sends `buf[offset..offset+len]` (len -1: to the end). See writeRaw. */
  write(buf: Uint8Array, offset: i32 = 0, len: i32 = -1): i32 {
    const n = len < 0 ? buf.length - offset : len;
    return this.writeRaw(buf.dataStart + <usize>offset, <u32>n);
  }

  /** Sends a string as UTF-8 (allocates; for small protocol replies). */
  writeString(s: string): i32 {
    const b = String.UTF8.encode(s);
    return this.writeRaw(changetype<usize>(b), <u32>b.byteLength);
  }

  shutdown(how: Shutdown): i32 {
    tcp_shutdown(this.handle, <u32>how, RET);
    return unitResult();
  }

  localAddress(): SocketAddress | null {
    return addressResult(this.handle, false);
  }

  peerAddress(): SocketAddress | null {
    return addressResult(this.handle, true);
  }

  close(): i32 {
    tcp_close(this.handle, RET);
    return unitResult();
  }
}

function addressResult(h: u32, peer: bool): SocketAddress | null {
  if (peer) tcp_peer_address(h, RET);
  else tcp_local_address(h, RET);
  if (load<u8>(RET + RESULT_IS_ERR) != 0) {
    lastErr = fromWit(load<u8>(RET + RESULT_ADDR_PAYLOAD));
    return null;
  }
  return SocketAddress.load(RET + RESULT_ADDR_PAYLOAD);
}
