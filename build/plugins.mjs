// Builds every plugin into a component:
//   assembly/plugins/<name>/index.ts      -> dist/plugins/<name>.wasm
//   assembly/test-plugins/<name>/index.ts -> dist/test-plugins/<name>.wasm
// through the same code as `wasmux build` (host/build/plugin-build.ts, run
// from dist/: build/all.mjs compiles the host first). The compile options
// are the top-level asconfig.json's (release target); each plugin's
// index.ts is given as the entry, since asconfig's `entries` is one list.
// Test plugins that must differ from the standard world bring their own wit/.
//
// Reproducible: the same sources give the same bytes (test/build.test.ts).
//
// Usage: node build/plugins.mjs [name...]   (default: all)
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { buildPlugin } = await import(join(root, 'dist/host/build/plugin-build.js'));

async function listPlugins(dir) {
  if (!existsSync(join(root, dir))) return [];
  const names = await readdir(join(root, dir));
  const out = [];
  for (const name of names.sort()) {
    if (existsSync(join(root, dir, name, 'index.ts'))) out.push({ name, dir });
  }
  return out;
}

async function buildOne({ name, dir }) {
  const pluginDir = join(root, dir, name);
  let wit; // default: wit/ and its plugin world
  if (existsSync(join(pluginDir, 'wit'))) {
    const text = await readFile(join(pluginDir, 'wit', 'world.wit'), 'utf8');
    wit = { path: join(pluginDir, 'wit'), world: `${/^package\s+([^;@]+)/m.exec(text)[1]}/plugin` };
  }
  const diagnostics = [];
  let built;
  try {
    built = await buildPlugin({
      projectDir: root,
      target: 'release',
      entry: relative(root, join(pluginDir, 'index.ts')),
      wit,
      sdkDir: join(root, 'assembly/sdk'),
      // Test plugins break the loader's rules on purpose; the real ones must pass them.
      check: dir === 'assembly/plugins',
      diagnostics: { write: (s) => (diagnostics.push(String(s)), true) },
    });
  } catch (e) {
    throw new Error(`${e.message}${diagnostics.length ? `\n${diagnostics.join('')}` : ''}`);
  }
  const outDir = join(root, 'dist', dir.replace(/^assembly\//, ''));
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, `${name}.wasm`);
  await writeFile(out, built.bytes);
  return { out: relative(root, out), size: built.bytes.length, sha: built.sha256 };
}

const only = new Set(process.argv.slice(2));
const plugins = [...(await listPlugins('assembly/plugins')), ...(await listPlugins('assembly/test-plugins'))].filter(
  (p) => only.size === 0 || only.has(p.name),
);
let failed = 0;
for (const p of plugins) {
  try {
    const r = await buildOne(p);
    console.log(`built ${r.out} (${r.size} bytes, sha256 ${r.sha.slice(0, 16)}…)`);
  } catch (e) {
    failed++;
    console.error(`error: plugin ${p.name}: ${e.message}`);
  }
}
if (failed) process.exit(1);
