// Live handover (wit/handover.wit): moving a connection to the next version
// of the plugin on a reload. The Server (server.ts) does this for its
// connections when its Handler opts in; these are the raw calls.

import { handover_adopt, handover_give, RESULT_ADOPT_HANDLE, RESULT_ADOPT_LEN, RESULT_ADOPT_PTR, RESULT_IS_ERR } from "./bindings";
import { RET, unitResult } from "./abi";
import { fromWit } from "./error";
import { TcpListener, TcpStream } from "./tcp";

/**
 * Gives `stream` to the new version with `state` (bytes at ptr, len).
 * Returns 0 (the stream's handle is closed for this instance; the socket
 * lives on in the new version) or an IoError: Denied (no new version takes
 * connections: drain it as usual), Limit (state too large or too many in
 * transit), BadHandle.
 */
export function giveStream(stream: TcpStream, ptr: usize, len: i32): i32 {
  handover_give(stream.handle, ptr, <usize>len, RET);
  return unitResult();
}

/** A connection handed over to this instance: its stream and the state it came with. */
export class Adopted {
  constructor(readonly stream: TcpStream, readonly state: ArrayBuffer) {}
}

let adoptErr: i32 = 0;

/** The IoError of the last adoptOn that returned null (WouldBlock: none waiting). */
export function adoptError(): i32 { return adoptErr; }

/**
 * Takes one connection handed over on the address of `l`, or null (see
 * adoptError()). The first call on a listener opts this instance in.
 */
export function adoptOn(l: TcpListener): Adopted | null {
  handover_adopt(l.handle, RET);
  if (load<u8>(RET + RESULT_IS_ERR) != 0) {
    adoptErr = fromWit(load<u8>(RET + RESULT_ADOPT_HANDLE));
    return null;
  }
  const h = load<u32>(RET + RESULT_ADOPT_HANDLE);
  const ptr = load<usize>(RET + RESULT_ADOPT_PTR);
  const len = load<u32>(RET + RESULT_ADOPT_LEN);
  const state = new ArrayBuffer(<i32>len);
  if (len > 0) {
    memory.copy(changetype<usize>(state), ptr, <usize>len);
    heap.free(ptr);
  }
  return new Adopted(new TcpStream(h), state);
}
