/**
 * The backends this host knows. Each backend file is loaded only when chosen:
 * it loads its OS's libraries through koffi at import, which must not happen
 * on an OS where they do not exist.
 */
import type { BackendModule, BackendName } from './backend.js';
import { WasmuxError } from '../errors.js';

interface Entry {
  /** null when the backend can run here; otherwise why not. No FFI involved. */
  unavailableReason(): string | null;
  load(): Promise<BackendModule>;
}

const ENTRIES: Record<BackendName, Entry> = {
  epoll: {
    unavailableReason: () => (process.platform === 'linux' ? null : `epoll exists only on Linux (this is ${process.platform})`),
    load: async () => (await import('./epoll.js')).epoll,
  },
  iocp: {
    unavailableReason: () => (process.platform === 'win32' ? null : `IOCP exists only on Windows (this is ${process.platform})`),
    load: async () => (await import('./iocp.js')).iocp,
  },
  kqueue: {
    unavailableReason: () =>
      process.platform === 'darwin' || process.platform === 'freebsd' || process.env.WASMUX_KQUEUE_LIBRARY
        ? null
        : `kqueue exists only on macOS and FreeBSD (this is ${process.platform}); elsewhere set WASMUX_KQUEUE_LIBRARY to a kqueue library such as libkqueue`,
    load: () =>
      import('./kqueue.js').then(
        (m) => m.kqueue,
        (e: Error) => {
          throw new WasmuxError(
            'WASMUX_ERR_BACKEND_UNAVAILABLE',
            `backend kqueue could not load ${process.env.WASMUX_KQUEUE_LIBRARY || 'libc'}: ${e.message}`,
          );
        },
      ),
  },
  // Last: the portable baseline, which `auto` picks only where nothing native works.
  poll: {
    unavailableReason: () =>
      ['linux', 'darwin', 'freebsd'].includes(process.platform)
        ? null
        : `poll(2) runs on the POSIX socket families (Linux, macOS, FreeBSD), not on ${process.platform}`,
    load: async () => (await import('./poll.js')).poll,
  },
};

/** Every backend name, in the order `auto` tries them. */
export const BACKEND_NAMES = Object.keys(ENTRIES) as BackendName[];

/**
 * Resolves `auto` (the first backend available here) or checks that the
 * named one is available. Throws a WasmuxError with the reason otherwise.
 */
export function resolveBackend(name: string): BackendName {
  if (name === 'auto') {
    const usable = BACKEND_NAMES.find((n) => ENTRIES[n].unavailableReason() === null);
    if (!usable) throw new WasmuxError('WASMUX_ERR_BACKEND_UNAVAILABLE', `no I/O backend works on ${process.platform}`);
    return usable;
  }
  const entry = ENTRIES[name as BackendName];
  if (!entry) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `unknown backend "${name}" (choose from: auto, ${BACKEND_NAMES.join(', ')})`);
  }
  const why = entry.unavailableReason();
  if (why !== null) throw new WasmuxError('WASMUX_ERR_BACKEND_UNAVAILABLE', `backend ${name} is not available: ${why}`);
  return name as BackendName;
}

/** The backends available here, in `auto` order. */
export function availableBackends(): BackendName[] {
  return BACKEND_NAMES.filter((n) => ENTRIES[n].unavailableReason() === null);
}

export function loadBackend(name: BackendName): Promise<BackendModule> {
  return ENTRIES[name].load();
}
