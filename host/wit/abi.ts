/**
 * Lifting and lowering the world's values, by the canonical ABI, at the
 * layouts generated from wit/ (host/generated/contract.ts). The per-interface
 * glue files use these and hold no layout of their own.
 *
 * What the guest gets wrong here is a trap (GuestTrap): an out-of-range
 * enum, flags or discriminant, a pointer outside its memory, a misaligned
 * return area. What the host or the OS decided is a result value.
 */
import { LAYOUT } from '../generated/contract.js';
import { codeOf } from '../backends/backend.js';
import type { SocketAddress } from '../backends/address.js';
import { GuestTrap } from '../sandbox/traps.js';
import type { GuestMemory } from './guest-memory.js';

const ADDR = LAYOUT['socket-address'];
const IP = LAYOUT['ip-address'];
const ADDR_TAG = ADDR.address + IP.tag;
const ADDR_PAYLOAD = ADDR.address + IP.payload;
const UNIT = LAYOUT['tcp.close'];
const U32 = LAYOUT['tcp.send'];
const LIST = LAYOUT['tcp.recv'];
const WAIT = LAYOUT['poll.wait'];
const EVENT = LAYOUT.event;

/** The world's flags and enums, lifted: values outside them trap. */
export function liftFlags(bits: number, count: number, what: string): number {
  bits >>>= 0;
  if (bits >>> count !== 0) throw new GuestTrap(`invalid ${what} flags ${bits}`);
  return bits;
}

export function liftEnum(value: number, cases: number, what: string): number {
  value >>>= 0;
  if (value >= cases) throw new GuestTrap(`invalid ${what} ${value}`);
  return value;
}

/** An option's discriminant: 0 or 1. */
export function liftOption(disc: number, what: string): boolean {
  disc >>>= 0;
  if (disc > 1) throw new GuestTrap(`invalid option discriminant ${disc} for ${what}`);
  return disc === 1;
}

/** A flattened socket-address (the ip-address discriminant, eight payload slots, the port) into `out`. */
export function liftAddress(family: number, a: readonly number[], port: number, out: SocketAddress): SocketAddress {
  if (family !== 0 && family !== 1) throw new GuestTrap(`invalid ip-address discriminant ${family}`);
  out.v6 = family === 1;
  for (let i = 0; i < 8; i++) out.groups[i] = i < 4 || out.v6 ? a[i]! & (out.v6 ? 0xffff : 0xff) : 0;
  out.port = port & 0xffff;
  return out;
}

/** A socket-address at `at` (the caller has checked the area). */
export function lowerAddress(mem: GuestMemory, at: number, addr: SocketAddress): void {
  const { u8, u16 } = mem;
  u8[at + ADDR_TAG] = addr.v6 ? 1 : 0;
  if (addr.v6) for (let i = 0; i < 8; i++) u16[(at + ADDR_PAYLOAD + 2 * i) >>> 1] = addr.groups[i]!;
  else for (let i = 0; i < 4; i++) u8[at + ADDR_PAYLOAD + i] = addr.groups[i]!;
  u16[(at + ADDR.port) >>> 1] = addr.port;
}

/** The size of a socket-address, for lists of them. */
export const ADDRESS_SIZE = ADDR.size;
export const ADDRESS_ALIGN = ADDR.align;

/** result<_, error-code> from a host result (0 or fail()). */
export function lowerUnit(mem: GuestMemory, retptr: number, r: number): void {
  mem.sync();
  mem.checkArea(retptr, UNIT.size, UNIT.align);
  mem.u8[retptr + UNIT.tag] = r >= 0 ? 0 : 1;
  if (r < 0) mem.u8[retptr + UNIT.payload] = codeOf(r);
}

/** result<u32, error-code> (and result<handle, error-code>) from a host result. */
export function lowerU32(mem: GuestMemory, retptr: number, r: number): void {
  mem.sync();
  mem.checkArea(retptr, U32.size, U32.align);
  if (r >= 0) {
    mem.u8[retptr + U32.tag] = 0;
    mem.u32[(retptr + U32.payload) >>> 2] = r;
  } else {
    mem.u8[retptr + U32.tag] = 1;
    mem.u8[retptr + U32.payload] = codeOf(r);
  }
}

/** result<list<u8>, error-code>: the list at `ptr` of `r` bytes, or the error. */
export function lowerBytes(mem: GuestMemory, retptr: number, ptr: number, r: number): void {
  const { u8, u32 } = mem;
  if (r >= 0) {
    u8[retptr + LIST.tag] = 0;
    u32[(retptr + LIST.okPtr) >>> 2] = ptr;
    u32[(retptr + LIST.okLen) >>> 2] = r;
  } else {
    u8[retptr + LIST.tag] = 1;
    u8[retptr + LIST.payload] = codeOf(r);
  }
}
export const BYTES_RESULT = LIST;

/** result<tuple<handle, socket-address>, error-code> (accept). */
const ACCEPT = LAYOUT['tcp.accept'];
export function lowerAccepted(mem: GuestMemory, retptr: number, r: number, peer: SocketAddress): void {
  mem.sync();
  mem.checkArea(retptr, ACCEPT.size, ACCEPT.align);
  if (r >= 0) {
    mem.u8[retptr + ACCEPT.tag] = 0;
    mem.u32[(retptr + ACCEPT.ok0) >>> 2] = r;
    lowerAddress(mem, retptr + ACCEPT.ok1, peer);
  } else {
    mem.u8[retptr + ACCEPT.tag] = 1;
    mem.u8[retptr + ACCEPT.payload] = codeOf(r);
  }
}

/** result<socket-address, error-code> (local-address, peer-address). */
const ADDRESS_RESULT = LAYOUT['tcp.local-address'];
export function lowerAddressResult(mem: GuestMemory, retptr: number, r: number, addr: SocketAddress): void {
  mem.sync();
  mem.checkArea(retptr, ADDRESS_RESULT.size, ADDRESS_RESULT.align);
  mem.u8[retptr + ADDRESS_RESULT.tag] = r >= 0 ? 0 : 1;
  if (r >= 0) lowerAddress(mem, retptr + ADDRESS_RESULT.payload, addr);
  else mem.u8[retptr + ADDRESS_RESULT.payload] = codeOf(r);
}

/**
 * list<event> from `count` events given as (token low, token high, readiness)
 * triples: allocated in the guest (its cabi_realloc hands over the SDK's
 * event buffer) and pointed to from the return area.
 */
export function lowerEvents(mem: GuestMemory, retptr: number, events: Uint32Array, count: number): void {
  const ptr = mem.alloc(count * EVENT.size, EVENT.align);
  const { u32, u8 } = mem;
  for (let i = 0; i < count; i++) {
    const at = ptr + i * EVENT.size;
    u32[(at + EVENT.token) >>> 2] = events[3 * i]!;
    u32[(at + EVENT.token + 4) >>> 2] = events[3 * i + 1]!;
    u8[at + EVENT.ready] = events[3 * i + 2]!;
  }
  u32[(retptr + WAIT.ptr) >>> 2] = ptr;
  u32[(retptr + WAIT.len) >>> 2] = count;
}
export const WAIT_RESULT = WAIT;

/** result<_, string> (run's): null for ok, the string for err. */
const RUN = LAYOUT.run;
export function liftRunResult(mem: GuestMemory, ret: number, maxBytes: number): string | null {
  mem.sync();
  mem.checkArea(ret, RUN.size, RUN.align);
  const disc = mem.u8[ret + RUN.tag];
  if (disc === 0) return null;
  if (disc !== 1) throw new GuestTrap(`invalid result discriminant ${disc} from run`);
  return mem.readString(mem.u32[(ret + RUN.errPtr) >>> 2]!, mem.u32[(ret + RUN.errLen) >>> 2]!, maxBytes);
}

/** datetime { seconds: u64, nanoseconds: u32 } at `retptr`. */
const DATETIME = LAYOUT.datetime;
export function lowerDatetime(mem: GuestMemory, retptr: number, seconds: number, nanos: number): void {
  mem.sync();
  mem.checkArea(retptr, DATETIME.size, DATETIME.align);
  mem.u32[(retptr + DATETIME.seconds) >>> 2] = seconds >>> 0;
  mem.u32[(retptr + DATETIME.seconds + 4) >>> 2] = Math.floor(seconds / 2 ** 32);
  mem.u32[(retptr + DATETIME.nanoseconds) >>> 2] = nanos;
}

/** result<tuple<handle, list<u8>>, error-code> (handover.adopt). */
export const ADOPTED = LAYOUT['handover.adopt'];
export function lowerAdopted(mem: GuestMemory, retptr: number, r: number, ptr: number, len: number): void {
  mem.sync();
  mem.checkArea(retptr, ADOPTED.size, ADOPTED.align);
  if (r >= 0) {
    mem.u8[retptr + ADOPTED.tag] = 0;
    mem.u32[(retptr + ADOPTED.ok0) >>> 2] = r;
    mem.u32[(retptr + ADOPTED.ok1) >>> 2] = ptr;
    mem.u32[(retptr + ADOPTED.ok1 + 4) >>> 2] = len;
  } else {
    mem.u8[retptr + ADOPTED.tag] = 1;
    mem.u8[retptr + ADOPTED.payload] = codeOf(r);
  }
}
