/**
 * What the WIT glue (host/wit/*.ts) calls: exactly the surface of an
 * instance's host it uses, so that something other than the rules can stand
 * behind it. InstanceHost (instance-host.ts) implements it for a real run; a
 * recording wraps that (host/trace/recorder.ts) and a replay answers from a
 * trace (host/trace/replay.ts). The glue's lifting and lowering run the same
 * in all three.
 *
 * Results are numbers: a handle, a count or 0, or `fail(ErrorCode)`.
 */
import type { SocketAddress } from '../backends/address.js';
import type { Clock } from './clock.js';
import type { LogLevel } from './instance-host.js';
import type { InstanceKnobs } from './policy.js';

/** The clocks the guest reads (wasi:clocks). */
export type GuestClock = Pick<Clock, 'monotonicNs' | 'wallMs'>;

export interface GuestHost {
  /** The policy as the guest may read it (wasmux:plugin/limits). */
  readonly limits: Pick<InstanceKnobs, 'maxMemoryMiB' | 'maxConnections'>;
  /** The guest's clocks: read once, when the imports are built. */
  readonly time: GuestClock;
  /** What wait() reports: per event, the token's low and high halves and the readiness bits. */
  readonly events: Uint32Array;
  /** The address accept() and addressOf() report (valid until the next call). */
  readonly address: SocketAddress;

  register(h: number, tokenLo: number, tokenHi: number, interest: number): number;
  reregister(h: number, tokenLo: number, tokenHi: number, interest: number): number;
  deregister(h: number): number;
  /** Writes the events into `events` and returns how many; throws StopSignal when the instance is to stop. */
  wait(max: number, timeoutMs: number): number;

  listen(addr: SocketAddress, backlog: number): number;
  accept(h: number): number;
  connect(addr: SocketAddress): number;
  /** recv in three steps: recvStart (a slot or a failure), recvLength (the buffer the glue lends), recvInto. */
  recvStart(h: number, max: number): number;
  recvLength(max: number): number;
  /** Reads up to `len` bytes into guest memory at absolute address `at`. */
  recvInto(slot: number, at: number, len: number): number;
  /** Sends `len` bytes of guest memory at absolute address `at`. */
  send(h: number, at: number, len: number): number;
  shutdown(h: number, how: number): number;
  close(h: number): number;
  addressOf(h: number, ofPeer: boolean): number;

  /** handover.give: `state` is a view of guest memory, valid during the call. */
  give(h: number, state: Uint8Array): number;
  /** handover.adopt: a new handle, its state in `adoptedState` (valid until the next call), or a failure. */
  adopt(l: number): number;
  readonly adoptedState: Uint8Array;

  /** metrics.define: a metric id or a failure (sandbox/metrics.ts). */
  metricDefine(kind: number, name: string, help: string, labels: readonly string[], buckets: ArrayLike<number>): number;
  /** metrics.series: a series id or a failure. */
  metricSeries(m: number, values: readonly string[]): number;
  /** metrics.report: `count` updates (u32 series at 0, f64 value at 8, 16 bytes each) from byte `at` of guest memory (`u32`, `f64`: its views, valid during the call). */
  metricReport(u32: Uint32Array, f64: Float64Array, at: number, count: number): number;

  /** Whether a guest log line may be written now (asked before its text is decoded). */
  admitGuestLine(): boolean;
  guestLine(level: LogLevel, text: string): void;
}
