/**
 * kqueue(2) and kevent(2) for this process, and the flavour of struct
 * kevent they take (host/ffi/kevent.ts): from libc on macOS and FreeBSD, or
 * from the library named by WASMUX_KQUEUE_LIBRARY, which lets another kqueue
 * implementation stand in (libkqueue on Linux, for one).
 *
 * The flavour of an overridden library: FreeBSD's filter numbers
 * (EVFILT_USER -11, as libkqueue's header has them), and the struct size
 * from WASMUX_KQUEUE_LAYOUT=32|64 if set, otherwise measured once at load by
 * `probeKeventSize`. The probe is cheap (one kqueue, four kevent calls) and
 * cannot be wrong about the stride, where a guess would misread every event
 * after the first.
 */
import koffi from 'koffi';
import { release } from 'node:os';
import {
  EV_ADD,
  EV_CLEAR,
  FREEBSD,
  FREEBSD_11,
  KeventList,
  MACOS,
  NOTE_TRIGGER,
  TIMESPEC_SIZE,
  type KeventSize,
  type KqueueFlavour,
} from './kevent.js';

export const KQUEUE_LIBRARY_ENV = 'WASMUX_KQUEUE_LIBRARY';
export const KQUEUE_LAYOUT_ENV = 'WASMUX_KQUEUE_LAYOUT';

/** The kqueue library named in the environment, or null for libc's own. */
export function kqueueLibraryOverride(): string | null {
  return process.env[KQUEUE_LIBRARY_ENV] || null;
}

const override = kqueueLibraryOverride();
// libc's close (a kqueue is an ordinary descriptor), and libc's name.
const { close, LIBC_PATH } =
  process.platform === 'linux' ? { close: (await import('./libc-linux.js')).close, LIBC_PATH: 'libc.so.6' } : await import('./libc-bsd.js');

/** Where kqueue and kevent come from (a path or libc's name), for messages. */
export const KQUEUE_LIBRARY = override ?? LIBC_PATH;
const lib = koffi.load(KQUEUE_LIBRARY);

export const kqueue = lib.func('int kqueue(void)');
/** kevent(kq, changelist, nchanges, eventlist, nevents, timeout); lists are Buffers, timeout a struct timespec or null. */
export const kevent = lib.func('int kevent(int kq, void *changelist, int nchanges, void *eventlist, int nevents, void *timeout)');

function native(): KqueueFlavour {
  if (process.platform === 'darwin') return MACOS;
  if (process.platform === 'freebsd') return Number.parseInt(release(), 10) >= 12 ? FREEBSD : FREEBSD_11;
  throw new Error(`kqueue is not part of ${process.platform}'s libc; set ${KQUEUE_LIBRARY_ENV}`);
}

function overridden(): KqueueFlavour {
  const EVFILT_USER = -11;
  const forced = process.env[KQUEUE_LAYOUT_ENV];
  if (forced && forced !== '32' && forced !== '64') {
    throw new Error(`${KQUEUE_LAYOUT_ENV} must be 32 or 64 (the size of struct kevent), not "${forced}"`);
  }
  const size = forced ? (Number(forced) as KeventSize) : probeKeventSize(EVFILT_USER);
  return { name: `${KQUEUE_LIBRARY} (${forced ? `${KQUEUE_LAYOUT_ENV}=${forced}` : 'probed'})`, size, EVFILT_USER };
}

/**
 * Measures the size of the library's struct kevent: two EVFILT_USER events
 * are registered and triggered one change at a time (so the size of what we
 * pass does not matter: the fields a 32-byte library reads come first, and a
 * 64-byte one reads zeros after them), then both are fetched into one zeroed
 * buffer. The second event starts at byte 32 or 64; the other place holds
 * zeros (ext, or nothing).
 */
export function probeKeventSize(EVFILT_USER: number): KeventSize {
  const IDENT = [0x7761736d, 0x7761736e]; // 'wasm', 'wasn': any numbers, as long as not 0
  const UDATA = [0x1a2b3c4d, 0x5e6f7a8b];
  const kq = kqueue() as number;
  if (kq < 0) throw new Error(`kqueue() failed (errno ${koffi.errno()})`);
  try {
    const change = new KeventList(64, 1);
    for (let i = 0; i < 2; i++) {
      change.set(0, IDENT[i]!, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, UDATA[i]!);
      if (kevent(kq, change.bytes, 1, null, 0, null) < 0) {
        throw new Error(`kevent(EV_ADD EVFILT_USER ${EVFILT_USER}) failed (errno ${koffi.errno()})`);
      }
      change.set(0, IDENT[i]!, EVFILT_USER, 0, NOTE_TRIGGER, 0, UDATA[i]!);
      if (kevent(kq, change.bytes, 1, null, 0, null) < 0) {
        throw new Error(`kevent(NOTE_TRIGGER) failed (errno ${koffi.errno()})`);
      }
    }
    const got = new KeventList(64, 2);
    const n = kevent(kq, null, 0, got.bytes, 2, Buffer.alloc(TIMESPEC_SIZE)) as number;
    if (n !== 2) throw new Error(`two triggered EVFILT_USER events, kevent returned ${n}`);
    const as32 = new KeventList(32, 4);
    got.bytes.copy(as32.bytes);
    const looksRight = (l: KeventList, i: number) => {
      const k = IDENT.indexOf(l.ident(i));
      return k >= 0 && l.filter(i) === EVFILT_USER && l.udata(i) === UDATA[k];
    };
    if (!looksRight(as32, 0)) throw new Error('the first event read back is not the one registered');
    if (looksRight(as32, 1)) return 32;
    if (looksRight(got, 1)) return 64;
    throw new Error('the second event is at neither byte 32 nor byte 64');
  } finally {
    close(kq);
  }
}

/** The flavour of struct kevent and filter numbers this process's kevent takes. */
export const flavour: KqueueFlavour = override ? overridden() : native();
