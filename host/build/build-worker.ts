/**
 * A build in a worker thread of its own (host/build/build-thread.ts starts
 * it): asc and jco run here, so that the thread serving plugins (the
 * supervisor's watchdog, signals) is never held by a compile, and each
 * build loads the project's toolchain as it is now.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WasmuxError } from '../errors.js';
import { buildPlugin } from './plugin-build.js';
import type { BuildThreadInput, BuildThreadMessage } from './build-thread.js';

const input = workerData as BuildThreadInput;
const post = (m: BuildThreadMessage, transfer: ArrayBuffer[] = []) => parentPort!.postMessage(m, transfer);

try {
  const built = await buildPlugin({
    projectDir: input.projectDir,
    target: input.target,
    config: input.config,
    diagnostics: { write: (text: string) => post({ kind: 'diagnostics', text: String(text) }), isTTY: input.isTTY },
  });
  const bytes = built.bytes.slice();
  post({ kind: 'built', bytes, sha256: built.sha256, outFile: built.outFile }, [bytes.buffer as ArrayBuffer]);
} catch (e) {
  if (e instanceof WasmuxError) post({ kind: 'failed', code: e.code, message: e.message });
  else post({ kind: 'crashed', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
}
