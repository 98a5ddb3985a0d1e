// `npm run build`: the host (TypeScript -> dist/host) and every plugin
// (AssemblyScript -> dist/plugins, dist/test-plugins). Run by `npm install`
// (prepare) and before every `npm test`.
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const quiet = process.argv.includes('--quiet');

function step(what, args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'inherit'] : 'inherit' });
  if (r.status !== 0) {
    console.error(`build: ${what} failed`);
    process.exit(r.status ?? 1);
  }
}

step('host (tsc)', [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']);
chmodSync(join(root, 'dist/host/cli/main.js'), 0o755);
step('plugins', [join(root, 'build/plugins.mjs')]);
