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
