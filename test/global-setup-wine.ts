/**
 * Vitest global setup: prepares Windows' Node under wine once per run
 * (build/wine-setup.mjs: about 15 s from nothing, 0.1 s when cached in
 * .cache/wine/), so that every run on a machine with wine runs the
 * IOCP tests. Without wine it only records why they are skipped.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  const root = fileURLToPath(new URL('..', import.meta.url));
  spawnSync(process.execPath, ['build/wine-setup.mjs'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
}
