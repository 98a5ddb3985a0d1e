/**
 * Addresses of memory the host hands to native code, for the few places
 * above host/ffi/ that must write one into a structure (an AFD poll block,
 * a UNICODE_STRING) or pass one to a system call as a number (guest memory
 * for recv and send). koffi itself is reached from host/ffi/ only.
 */
import koffi from 'koffi';

/** The address of a buffer's (or a native allocation's) first byte, as a JS number (exact below 2^53). */
export function addressOf(memory: ArrayBuffer | ArrayBufferView | object): number {
  return Number(koffi.address(memory));
}

/** The same address as a bigint, to write into a pointer-sized field. */
export function bigAddressOf(memory: ArrayBuffer | ArrayBufferView | object): bigint {
  return koffi.address(memory) as bigint;
}

/** An ArrayBuffer over `bytes` bytes of native memory at `pointer` (a koffi pointer). */
export function viewOf(pointer: object, bytes: number): ArrayBuffer {
  return koffi.view(pointer, bytes);
}

// memcpy, for copying to and from memory known only by its address (the
// in-memory backend of a simulation writes into guest memory this way, as
// the kernel does for a real recv). Declared on first use.
let memcpyIn: ((dst: number, src: Uint8Array, n: number) => unknown) | null = null;
let memcpyOut: ((dst: Uint8Array, src: number, n: number) => unknown) | null = null;

function libcName(): string {
  switch (process.platform) {
    case 'win32':
      return 'msvcrt.dll';
    case 'darwin':
      return '/usr/lib/libSystem.B.dylib';
    case 'freebsd':
      return 'libc.so.7';
    default:
      return 'libc.so.6';
  }
}

function declare(): void {
  const lib = koffi.load(libcName());
  memcpyIn = lib.func('void *memcpy(uintptr_t dst, void *src, uintptr_t n)');
  memcpyOut = lib.func('void *memcpy(void *dst, uintptr_t src, uintptr_t n)');
}

/** Copies `src` to the memory at `address`. */
export function copyToAddress(address: number, src: Uint8Array): void {
  if (memcpyIn === null) declare();
  if (src.length > 0) memcpyIn!(address, src, src.length);
}

/** Copies `dst.length` bytes from the memory at `address` into `dst`. */
export function copyFromAddress(dst: Uint8Array, address: number): void {
  if (memcpyOut === null) declare();
  if (dst.length > 0) memcpyOut!(dst, address, dst.length);
}
