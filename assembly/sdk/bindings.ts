// The canonical-ABI bindings of the wasmux plugin world, written by hand in
// this one file (AssemblyScript has no wit-bindgen generator).
//
// Each import below is the core-wasm signature that the component model's
// canonical ABI gives the WIT function in wit/ (flattened parameters; a
// result wider than one core value is written by the host at `retptr`).
// The byte layouts of those results are the constants at the end of this
// file, derived from generated/contract.ts. test/abi.test.ts runs the
// `abi` test plugin through stock jco glue and through the wasmux host and
// checks that both agree with these.

import {
  DATETIME_NANOSECONDS, HANDOVER_ADOPT_OK_0, HANDOVER_ADOPT_OK_1, IP_ADDRESS_PAYLOAD, IP_ADDRESS_TAG, POLL_REGISTER_PAYLOAD, POLL_REGISTER_TAG,
  SOCKET_ADDRESS_ADDRESS, SOCKET_ADDRESS_PORT, SOCKET_ADDRESS_SIZE, TCP_ACCEPT_OK_0, TCP_ACCEPT_OK_1,
  TCP_LISTEN_PAYLOAD, TCP_LOCAL_ADDRESS_PAYLOAD, TCP_RECV_OK_LEN, TCP_RECV_OK_PTR,
} from "./generated/contract";

// ---- wasmux:plugin/poll@0.1.0 ------------------------------------------------

// register(h, token, interest) -> result<_, error-code>
@external("wasmux:plugin/poll@0.1.0", "register")
export declare function poll_register(h: u32, token: u64, interest: u32, retptr: usize): void;

// reregister(h, token, interest) -> result<_, error-code>
@external("wasmux:plugin/poll@0.1.0", "reregister")
export declare function poll_reregister(h: u32, token: u64, interest: u32, retptr: usize): void;

// deregister(h) -> result<_, error-code>
@external("wasmux:plugin/poll@0.1.0", "deregister")
export declare function poll_deregister(h: u32, retptr: usize): void;

// wait(max-events, timeout-ms: option<u32>) -> list<event>
// The list is allocated through cabi_realloc (see entry.ts).
@external("wasmux:plugin/poll@0.1.0", "wait")
export declare function poll_wait(maxEvents: u32, hasTimeout: u32, timeoutMs: u32, retptr: usize): void;

// ---- wasmux:plugin/tcp@0.1.0 ---------------------------------------------------
// A socket-address flattens to 10 values: the ip-address discriminant
// (0 ipv4, 1 ipv6), eight payload slots (ipv4 uses the first four as bytes,
// ipv6 all eight as 16-bit groups), then the port.

// listen(address, backlog) -> result<handle, error-code>
@external("wasmux:plugin/tcp@0.1.0", "listen")
export declare function tcp_listen(
  family: u32, a0: u32, a1: u32, a2: u32, a3: u32, a4: u32, a5: u32, a6: u32, a7: u32, port: u32,
  backlog: u32, retptr: usize): void;

// accept(l) -> result<tuple<handle, socket-address>, error-code>
@external("wasmux:plugin/tcp@0.1.0", "accept")
export declare function tcp_accept(l: u32, retptr: usize): void;

// connect(address) -> result<handle, error-code>
@external("wasmux:plugin/tcp@0.1.0", "connect")
export declare function tcp_connect(
  family: u32, a0: u32, a1: u32, a2: u32, a3: u32, a4: u32, a5: u32, a6: u32, a7: u32, port: u32,
  retptr: usize): void;

// recv(s, max-bytes) -> result<list<u8>, error-code>
// The list is allocated through cabi_realloc (see entry.ts).
@external("wasmux:plugin/tcp@0.1.0", "recv")
export declare function tcp_recv(s: u32, maxBytes: u32, retptr: usize): void;

// send(s, data) -> result<u32, error-code>
@external("wasmux:plugin/tcp@0.1.0", "send")
export declare function tcp_send(s: u32, ptr: usize, len: usize, retptr: usize): void;

// shutdown(s, how) -> result<_, error-code>
@external("wasmux:plugin/tcp@0.1.0", "shutdown")
export declare function tcp_shutdown(s: u32, how: u32, retptr: usize): void;

// close(h) -> result<_, error-code>
@external("wasmux:plugin/tcp@0.1.0", "close")
export declare function tcp_close(h: u32, retptr: usize): void;

// local-address(h) -> result<socket-address, error-code>
@external("wasmux:plugin/tcp@0.1.0", "local-address")
export declare function tcp_local_address(h: u32, retptr: usize): void;

// peer-address(s) -> result<socket-address, error-code>
@external("wasmux:plugin/tcp@0.1.0", "peer-address")
export declare function tcp_peer_address(s: u32, retptr: usize): void;

// ---- wasmux:plugin/handover@0.1.0 ----------------------------------------------

// give(s, state) -> result<_, error-code>
@external("wasmux:plugin/handover@0.1.0", "give")
export declare function handover_give(s: u32, ptr: usize, len: usize, retptr: usize): void;

// adopt(l) -> result<tuple<handle, list<u8>>, error-code>
// The list is allocated through cabi_realloc (the heap: see abi.ts realloc).
@external("wasmux:plugin/handover@0.1.0", "adopt")
export declare function handover_adopt(l: u32, retptr: usize): void;

// ---- wasmux:plugin/metrics@0.1.0 -----------------------------------------------

// define(kind, name, help, labels: list<string>, buckets: list<f64>) -> result<metric-id, error-code>
@external("wasmux:plugin/metrics@0.1.0", "define")
export declare function metrics_define(
  kind: u32, namePtr: usize, nameLen: usize, helpPtr: usize, helpLen: usize, labelsPtr: usize, labelsLen: usize,
  bucketsPtr: usize, bucketsLen: usize, retptr: usize): void;

// series(m, values: list<string>) -> result<series-id, error-code>
@external("wasmux:plugin/metrics@0.1.0", "series")
export declare function metrics_series(m: u32, valuesPtr: usize, valuesLen: usize, retptr: usize): void;

// report(updates: list<update>) -> result<_, error-code>; an update is { series: u32, value: f64 } (UPDATE_SIZE bytes)
@external("wasmux:plugin/metrics@0.1.0", "report")
export declare function metrics_report(ptr: usize, len: usize, retptr: usize): void;

// ---- wasmux:plugin/log@0.1.0 ---------------------------------------------------

// log(level, message)
@external("wasmux:plugin/log@0.1.0", "log")
export declare function log_log(level: u32, ptr: usize, len: usize): void;

// ---- wasmux:plugin/limits@0.1.0 --------------------------------------------------

// memory-limit() -> u64
@external("wasmux:plugin/limits@0.1.0", "memory-limit")
export declare function limits_memory_limit(): u64;

// max-connections() -> u32
@external("wasmux:plugin/limits@0.1.0", "max-connections")
export declare function limits_max_connections(): u32;

// ---- wasi:clocks@0.2.0 -------------------------------------------------------------

// monotonic-clock.now() -> instant (u64 nanoseconds)
@external("wasi:clocks/monotonic-clock@0.2.0", "now")
export declare function monotonic_now(): u64;

// wall-clock.now() -> datetime { seconds: u64, nanoseconds: u32 }
@external("wasi:clocks/wall-clock@0.2.0", "now")
export declare function wall_now(retptr: usize): void;

// ---- Layouts (canonical ABI: size, alignment, field offsets) ------------------------
// Named for what the SDK reads where; every number comes from
// generated/contract.ts (build/contract.mjs, from wit/).

// result<T, error-code>: the discriminant byte (0 ok, 1 err), then the payload.
export const RESULT_IS_ERR: usize = POLL_REGISTER_TAG;
// result<_, error-code>: the error-code.
export const RESULT_UNIT_ERR: usize = POLL_REGISTER_PAYLOAD;
// result<handle, error-code> and result<u32, error-code>: the u32 (or the error-code).
export const RESULT_U32_PAYLOAD: usize = TCP_LISTEN_PAYLOAD;
// result<list<u8>, error-code>: the list's pointer and length.
export const RESULT_LIST_PTR: usize = TCP_RECV_OK_PTR;
export const RESULT_LIST_LEN: usize = TCP_RECV_OK_LEN;
// result<tuple<handle, socket-address>, error-code>: the handle (or the error-code), the address.
export const RESULT_ACCEPT_HANDLE: usize = TCP_ACCEPT_OK_0;
export const RESULT_ACCEPT_ADDR: usize = TCP_ACCEPT_OK_1;
// result<tuple<handle, list<u8>>, error-code>: the handle (or the error-code), the list's pointer and length.
export const RESULT_ADOPT_HANDLE: usize = HANDOVER_ADOPT_OK_0;
export const RESULT_ADOPT_PTR: usize = HANDOVER_ADOPT_OK_1;
export const RESULT_ADOPT_LEN: usize = HANDOVER_ADOPT_OK_1 + 4;
// result<socket-address, error-code>: the address (or the error-code).
export const RESULT_ADDR_PAYLOAD: usize = TCP_LOCAL_ADDRESS_PAYLOAD;

// socket-address: the ip-address discriminant (0 ipv4, 1 ipv6), its payload
// (ipv4: 4 bytes; ipv6: 8 x u16), the port (u16).
export const ADDR_SIZE: usize = SOCKET_ADDRESS_SIZE;
export const ADDR_FAMILY: usize = SOCKET_ADDRESS_ADDRESS + IP_ADDRESS_TAG;
export const ADDR_PAYLOAD: usize = SOCKET_ADDRESS_ADDRESS + IP_ADDRESS_PAYLOAD;
export const ADDR_PORT: usize = SOCKET_ADDRESS_PORT;

// update (metrics.report): the series (u32), the value (f64).
export { UPDATE_SIZE, UPDATE_SERIES, UPDATE_VALUE } from "./generated/contract";

// event: the token (u64), the readiness flags (u8).
export { EVENT_SIZE, EVENT_TOKEN, EVENT_READY } from "./generated/contract";

// datetime: seconds (u64), nanoseconds (u32).
export const DATETIME_NANOS: usize = DATETIME_NANOSECONDS;
export { DATETIME_SECONDS } from "./generated/contract";

// The export run(ctx: context) -> result<_, string>.
// context flattens to (config ptr, config len, listen ptr, listen len,
// instance); listen elements are socket-addresses (ADDR_SIZE). The result is
// returned as a pointer to its discriminant byte, then the string's pointer
// and length.
export { RUN_SIZE as RUN_RESULT_SIZE, RUN_ALIGN as RUN_RESULT_ALIGN, RUN_TAG as RUN_RESULT_IS_ERR,
  RUN_ERR_PTR as RUN_RESULT_ERR_PTR, RUN_ERR_LEN as RUN_RESULT_ERR_LEN } from "./generated/contract";
