/**
 * The guest's linear memory and allocator, as the glue sees them: typed
 * views, the absolute address for the kernel, and the bounds and alignment
 * checks of the canonical ABI.
 *
 * Views are re-derived lazily: when the guest grows its memory the old
 * ArrayBuffer is detached (its byteLength becomes 0), which `sync()` notices
 * at the cost of one property read.
 */
import { addressOf } from '../ffi/native-memory.js';
import { GuestTrap, startFunctionTrap } from '../sandbox/traps.js';

type Realloc = (old: number, oldSize: number, align: number, newSize: number) => number;

export class GuestMemory {
  // Empty until attach(): the first sync() of an import called before the
  // instance exists (from its start function) goes to refresh(), which traps.
  u8 = new Uint8Array(0);
  u16 = new Uint16Array(0);
  u32 = new Uint32Array(0);
  f64 = new Float64Array(0);
  /** Absolute address of byte 0 of guest memory, for syscalls. */
  base = 0;
  private memory: WebAssembly.Memory | null = null;
  private realloc: Realloc | null = null;
  /**
   * True while the host is inside the guest's cabi_realloc (or post-return):
   * the canonical ABI's may_leave is false there, so an import the guest
   * calls from it traps instead of running inside the host's half-done call.
   */
  private inGuestCallback = false;

  /** `onResize(bytes)`: told the memory's size when the instance attaches it and whenever it grows. */
  constructor(private readonly onResize: (bytes: number) => void = () => {}) {}

  /** Whether attach() has been called (the instance exists). */
  get attached(): boolean {
    return this.memory !== null;
  }

  /** The memory's size now (0 before attach), read without sync(): it holds after a trap inside cabi_realloc too. */
  get byteLength(): number {
    return this.memory === null ? 0 : this.memory.buffer.byteLength;
  }

  /** Called once the instance exists (imports are created before it). */
  attach(memory: WebAssembly.Memory, realloc: Realloc | null): void {
    this.memory = memory;
    this.realloc = realloc;
    this.refresh();
  }

  private refresh(): void {
    if (this.memory === null) throw startFunctionTrap();
    const buf = this.memory.buffer;
    this.u8 = new Uint8Array(buf);
    this.u16 = new Uint16Array(buf, 0, buf.byteLength >>> 1);
    this.u32 = new Uint32Array(buf, 0, buf.byteLength >>> 2);
    this.f64 = new Float64Array(buf, 0, buf.byteLength >>> 3);
    this.base = addressOf(buf);
    this.onResize(buf.byteLength);
  }

  /**
   * Makes the views current; call first in every import that touches memory
   * or has an effect: it also traps a call from inside cabi_realloc.
   */
  sync(): void {
    if (this.u8.byteLength === 0 || this.inGuestCallback) this.slowSync();
  }

  private slowSync(): void {
    if (this.inGuestCallback) {
      this.inGuestCallback = false; // the trap ends the instance; the host's own sync after it must not trap again
      throw new GuestTrap('the plugin called an import from cabi_realloc or a post-return function, where the canonical ABI forbids it');
    }
    this.refresh();
  }

  /** Runs guest code the host calls in the middle of an import (realloc, post-return), where imports trap. */
  callback<T>(call: () => T): T {
    this.inGuestCallback = true;
    const r = call();
    this.inGuestCallback = false;
    return r;
  }

  /** Traps unless [ptr, ptr+len) lies in memory. */
  check(ptr: number, len: number): void {
    if (ptr < 0 || len < 0 || ptr + len > this.u8.length) {
      throw new GuestTrap(`out-of-bounds memory access: ${len} bytes at ${ptr} (memory is ${this.u8.length} bytes)`);
    }
  }

  /** Traps unless a `size`-byte area at `ptr` is in memory and `align`-aligned. */
  checkArea(ptr: number, size: number, align: number, what = 'return area'): void {
    if ((ptr & (align - 1)) !== 0) throw new GuestTrap(`misaligned ${what} at ${ptr} (needs ${align})`);
    this.check(ptr, size);
  }

  /** Calls the guest's cabi_realloc for a new block and checks what it returned. */
  alloc(size: number, align: number): number {
    if (this.realloc === null) throw new GuestTrap('the plugin does not export cabi_realloc');
    this.inGuestCallback = true;
    const ptr = this.realloc(0, 0, align, size) >>> 0;
    this.inGuestCallback = false;
    this.sync();
    if ((ptr & (align - 1)) !== 0) throw new GuestTrap(`cabi_realloc returned a misaligned pointer ${ptr}`);
    this.check(ptr, size);
    return ptr;
  }

  /** Gives back a block from `alloc` that ended up unused (see wit/tcp.wit, recv). */
  release(ptr: number, size: number, align: number): void {
    this.inGuestCallback = true;
    this.realloc!(ptr, size, align, 0);
    this.inGuestCallback = false;
    this.sync();
  }

  writeString(s: string): { ptr: number; len: number } {
    const bytes = Buffer.from(s, 'utf8');
    const ptr = this.alloc(bytes.length, 1);
    this.u8.set(bytes, ptr);
    return { ptr, len: bytes.length };
  }

  readString(ptr: number, len: number, max: number): string {
    this.check(ptr, len);
    const n = Math.min(len, max);
    return Buffer.from(this.u8.buffer, ptr, n).toString('utf8');
  }
}

/** What a trap message adds about memory: how much linear memory the guest had, of how much allowed ('' before attach). */
export function memoryNote(mem: GuestMemory, maxMemoryMiB: number): string {
  if (!mem.attached) return '';
  // Not sync(): after a trap inside cabi_realloc (the host's alloc never
  // returned) it would throw the reentry trap instead of answering.
  const mib = (n: number) => +(n / 1048576).toFixed(2);
  return ` (linear memory ${mib(mem.byteLength)} MiB of ${maxMemoryMiB} MiB allowed)`;
}
