/**
 * The build thread's side (host/build/build-thread.ts starts it): builds one
 * request at a time with buildPlugin. asc and jco run here, so that the
 * thread serving plugins (the supervisor's watchdog, signals) is never held
 * by a compile; the thread stays up between builds, so the toolchain is
 * loaded and warmed once (a rebuild takes a fraction of the first build).
 */
import { parentPort } from 'node:worker_threads';
import { WasmuxError } from '../errors.js';
import { buildPlugin } from './plugin-build.js';
import type { BuildThreadMessage, BuildThreadRequest } from './build-thread.js';

const port = parentPort!;
const post = (m: BuildThreadMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

port.on('message', async (req: BuildThreadRequest) => {
  try {
    const built = await buildPlugin({
      projectDir: req.projectDir,
      target: req.target,
      config: req.config,
      diagnostics: { write: (text: string) => post({ id: req.id, kind: 'diagnostics', text: String(text) }), isTTY: req.isTTY },
    });
    const bytes = built.bytes.slice();
    post({ id: req.id, kind: 'built', bytes, sha256: built.sha256, outFile: built.outFile }, [bytes.buffer as ArrayBuffer]);
  } catch (e) {
    if (e instanceof WasmuxError) post({ id: req.id, kind: 'failed', code: e.code, message: e.message });
    else post({ id: req.id, kind: 'crashed', message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
});
