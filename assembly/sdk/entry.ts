// The plugin's exports: every plugin's index.ts re-exports this file with
// `export * from "../../sdk/entry"`, so it must export nothing else.

import { ADDR_SIZE, RUN_RESULT_ALIGN, RUN_RESULT_ERR_LEN, RUN_RESULT_ERR_PTR, RUN_RESULT_IS_ERR, RUN_RESULT_SIZE } from "./bindings";
import { realloc } from "./abi";
import { Context } from "./context";
import { mainFn } from "./serve";
import { SocketAddress } from "./net";
import "./abort"; // compiled in so that asc's --use abort= can find it

const RUN_RESULT: usize = memory.data(<i32>RUN_RESULT_SIZE, <i32>RUN_RESULT_ALIGN);

/** The canonical ABI's allocator: how the host passes lists and strings in. */
export function cabi_realloc(old: usize, oldSize: usize, align: usize, newSize: usize): usize {
  return realloc(old, oldSize, align, newSize);
}

/** The world's export `run(ctx: context) -> result<_, string>`. */
export function run(configPtr: usize, configLen: usize, listenPtr: usize, listenLen: u32, instance: u32): usize {
  const config = String.UTF8.decodeUnsafe(configPtr, configLen);
  const listen = new Array<SocketAddress>(listenLen);
  for (let i: u32 = 0; i < listenLen; i++) {
    listen[i] = SocketAddress.load(listenPtr + <usize>i * ADDR_SIZE);
  }
  // The host allocated both through cabi_realloc; they are decoded now.
  if (configLen > 0) heap.free(configPtr);
  if (listenLen > 0) heap.free(listenPtr);

  const main = mainFn;
  const err = main ? main(new Context(config, listen, instance)) : "the plugin never called serve(main)";
  if (err === null) {
    store<u8>(RUN_RESULT + RUN_RESULT_IS_ERR, 0);
  } else {
    const b = String.UTF8.encode(err);
    store<u8>(RUN_RESULT + RUN_RESULT_IS_ERR, 1);
    store<usize>(RUN_RESULT + RUN_RESULT_ERR_PTR, changetype<usize>(b));
    store<u32>(RUN_RESULT + RUN_RESULT_ERR_LEN, <u32>b.byteLength);
    keep = b; // reachable until the host has read it
  }
  return RUN_RESULT;
}

// The error message's bytes, kept reachable for the garbage collector until
// the host has copied them.
let keep: ArrayBuffer | null = null;
