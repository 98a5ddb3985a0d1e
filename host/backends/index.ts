/** The backends this host knows, by name. */
import type { BackendModule, BackendName } from './backend.js';
import { epoll } from './epoll.js';
import { WasmuxError } from '../errors.js';

const BACKENDS: Record<BackendName, BackendModule> = { epoll };

export const BACKEND_NAMES = Object.keys(BACKENDS) as BackendName[];

export function backendModule(name: BackendName): BackendModule {
  return BACKENDS[name];
}

/** Resolves `auto` and checks availability; throws a WasmuxError with the reason. */
export function selectBackend(name: string): BackendModule {
  if (name === 'auto') {
    const usable = BACKEND_NAMES.map((n) => BACKENDS[n]).find((b) => b.unavailableReason() === null);
    if (!usable) throw new WasmuxError('WASMUX_ERR_BACKEND_UNAVAILABLE', `no I/O backend works on ${process.platform}`);
    return usable;
  }
  const b = BACKENDS[name as BackendName];
  if (!b) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `unknown backend "${name}" (choose from: auto, ${BACKEND_NAMES.join(', ')})`);
  }
  const why = b.unavailableReason();
  if (why !== null) throw new WasmuxError('WASMUX_ERR_BACKEND_UNAVAILABLE', `backend ${name} is not available: ${why}`);
  return b;
}
