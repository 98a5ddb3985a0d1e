/**
 * struct kevent: its layouts per kqueue implementation, the constants of
 * the kqueue API, and a reader/writer for arrays of it in a Buffer. Loads no
 * library (host/ffi/kqueue-lib.ts does), so it runs and is tested anywhere.
 *
 * The layouts (64-bit targets only; every field little-endian here):
 *
 *   offset  field   C type                 bytes
 *        0  ident   uintptr_t                  8
 *        8  filter  int16_t (short)            2
 *       10  flags   uint16_t (u_short)         2
 *       12  fflags  uint32_t (u_int)           4
 *       16  data    intptr_t / int64_t         8
 *       24  udata   void *                     8
 *       32  ext     uint64_t[4]               32   FreeBSD 12+ only
 *
 * - macOS, 32 bytes: xnu bsd/sys/event.h, `struct kevent` inside
 *   `#pragma pack(4)` (which moves no field at these offsets; it only
 *   lowers the struct's alignment to 4). EVFILT_USER is -10.
 * - FreeBSD 12 and later, 64 bytes: sys/sys/event.h appends `__uint64_t
 *   ext[4]` and makes `data` an `__int64_t`; libc's default `kevent` symbol
 *   (FBSD_1.5) takes this layout, the FBSD_1.0 compat symbol the old one.
 *   FreeBSD 11 and older: 32 bytes. EVFILT_USER is -11.
 * - libkqueue, 32 bytes: its include/sys/event.h declares the FreeBSD 11
 *   struct (no ext) and FreeBSD's filter numbers (EVFILT_USER -11).
 *
 * Same on all of them: EVFILT_READ -1, EVFILT_WRITE -2, EV_ADD 0x1,
 * EV_DELETE 0x2, EV_ENABLE 0x4, EV_DISABLE 0x8, EV_ONESHOT 0x10, EV_CLEAR
 * 0x20, EV_RECEIPT 0x40, EV_ERROR 0x4000, EV_EOF 0x8000, NOTE_TRIGGER
 * 0x01000000.
 */
import koffi from 'koffi';
import { endianness } from 'node:os';

export const EVFILT_READ = -1;
export const EVFILT_WRITE = -2;
export const EV_ADD = 0x0001;
export const EV_DELETE = 0x0002;
export const EV_ENABLE = 0x0004;
export const EV_DISABLE = 0x0008;
export const EV_ONESHOT = 0x0010;
export const EV_CLEAR = 0x0020;
export const EV_RECEIPT = 0x0040;
export const EV_ERROR = 0x4000;
export const EV_EOF = 0x8000;
export const NOTE_TRIGGER = 0x01000000;

export type KeventSize = 32 | 64;

/** What differs between kqueue implementations, as far as wasmux is concerned. */
export interface KqueueFlavour {
  readonly name: string;
  readonly size: KeventSize;
  readonly EVFILT_USER: number;
}

export const MACOS: KqueueFlavour = { name: 'macOS', size: 32, EVFILT_USER: -10 };
export const FREEBSD: KqueueFlavour = { name: 'FreeBSD 12+', size: 64, EVFILT_USER: -11 };
export const FREEBSD_11: KqueueFlavour = { name: 'FreeBSD 11', size: 32, EVFILT_USER: -11 };

const TWO_32 = 4294967296;

/**
 * An array of struct kevent in one Buffer (the memory handed to kevent(2)),
 * read and written through 32-bit views: no allocation per event.
 */
export class KeventList {
  readonly bytes: Buffer;
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly words: number;

  constructor(
    readonly size: KeventSize,
    readonly capacity: number,
  ) {
    this.bytes = Buffer.alloc(size * capacity);
    this.u32 = new Uint32Array(this.bytes.buffer, this.bytes.byteOffset, (size * capacity) >>> 2);
    this.i32 = new Int32Array(this.bytes.buffer, this.bytes.byteOffset, (size * capacity) >>> 2);
    this.words = size >>> 2;
  }

  /** Writes entry `i` (ext, if the layout has it, zeroed). `ident`, `data`, `udata`: integers below 2^53. */
  set(i: number, ident: number, filter: number, flags: number, fflags: number, data: number, udata: number): void {
    const u = this.u32;
    const w = i * this.words;
    u[w] = ident >>> 0;
    u[w + 1] = Math.floor(ident / TWO_32);
    u[w + 2] = (filter & 0xffff) | ((flags & 0xffff) << 16);
    u[w + 3] = fflags >>> 0;
    u[w + 4] = data >>> 0;
    this.i32[w + 5] = Math.floor(data / TWO_32);
    u[w + 6] = udata >>> 0;
    u[w + 7] = Math.floor(udata / TWO_32);
    for (let k = 8; k < this.words; k++) u[w + k] = 0;
  }

  ident(i: number): number {
    const w = i * this.words;
    return this.u32[w]! + this.u32[w + 1]! * TWO_32;
  }

  filter(i: number): number {
    return (this.u32[i * this.words + 2]! << 16) >> 16;
  }

  flags(i: number): number {
    return this.u32[i * this.words + 2]! >>> 16;
  }

  fflags(i: number): number {
    return this.u32[i * this.words + 3]!;
  }

  data(i: number): number {
    const w = i * this.words;
    return this.u32[w + 4]! + this.i32[w + 5]! * TWO_32;
  }

  udata(i: number): number {
    const w = i * this.words;
    return this.u32[w + 6]! + this.u32[w + 7]! * TWO_32;
  }
}

// The layouts above, checked once at load against koffi's C layout rules.
if (endianness() !== 'LE') throw new Error('wasmux: the kevent codec assumes a little-endian CPU');
const KEVENT_FIELDS = { ident: 'uintptr_t', filter: 'int16_t', flags: 'uint16_t', fflags: 'uint32_t', data: 'int64_t', udata: 'void *' };
const KEVENT_32 = koffi.struct(KEVENT_FIELDS);
const KEVENT_64 = koffi.struct({ ...KEVENT_FIELDS, ext: koffi.array('uint64_t', 4) });
const OFFSETS: Record<string, number> = { ident: 0, filter: 8, flags: 10, fflags: 12, data: 16, udata: 24 };
if (
  koffi.sizeof('void *') !== 8 ||
  koffi.sizeof(KEVENT_32) !== 32 ||
  koffi.sizeof(KEVENT_64) !== 64 ||
  koffi.offsetof(KEVENT_64, 'ext') !== 32 ||
  Object.entries(OFFSETS).some(([f, at]) => koffi.offsetof(KEVENT_32, f) !== at || koffi.offsetof(KEVENT_64, f) !== at)
) {
  throw new Error('wasmux: unexpected struct kevent layout');
}
/** struct timespec { time_t tv_sec; long tv_nsec; }: 16 bytes on every 64-bit target here. */
export const TIMESPEC_SIZE = 16;
if (koffi.sizeof(koffi.struct({ tv_sec: 'int64_t', tv_nsec: 'int64_t' })) !== TIMESPEC_SIZE) {
  throw new Error('wasmux: unexpected struct timespec size');
}
