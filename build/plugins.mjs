// Builds every plugin into a component:
//   assembly/plugins/<name>/index.ts      -> dist/plugins/<name>.wasm
//   assembly/test-plugins/<name>/index.ts -> dist/test-plugins/<name>.wasm
// asc compiles the AssemblyScript to a core module whose imports and exports
// already carry component-model names (see assembly/sdk/bindings.ts); jco then
// embeds the world from wit/ (or the plugin folder's own wit/, for test plugins
// that must differ) and wraps the module into a component.
//
// Reproducible: the same sources give the same bytes (no timestamps or paths
// end up in the output; test/build.test.ts checks it).
//
// Usage: node build/plugins.mjs [name...]   (default: all)
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';
import { componentEmbed, componentNew } from '@bytecodealliance/jco';
import { _setPreopens } from '@bytecodealliance/preview2-shim/filesystem';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WORLD = 'wasmux:plugin/plugin';

// jco's wasm-tools reads WIT through WASI; give it the project (read-only use).
_setPreopens({ [root]: root });

// Options every plugin is compiled with, and why:
const ASC_FLAGS = [
  '--runtime', 'incremental', // long-running servers allocate per connection: they need a GC
  '--exportStart', '_initialize', // top-level code calls imports (log); run it after instantiation
  '--use', 'abort=assembly/sdk/abort/abort', // no `env.abort` import: a component cannot satisfy it
  '--optimizeLevel', '3',
  '--shrinkLevel', '0',
  '--noColors',
];

async function listPlugins(dir) {
  if (!existsSync(join(root, dir))) return [];
  const names = await readdir(join(root, dir));
  const out = [];
  for (const name of names.sort()) {
    if (existsSync(join(root, dir, name, 'index.ts'))) out.push({ name, dir });
  }
  return out;
}

async function compileCore(entry) {
  const outputs = {};
  const stderr = [];
  const { error } = await asc.main([relative(root, entry), '--outFile', 'out.wasm', ...ASC_FLAGS], {
    stdout: { write: () => true },
    stderr: { write: (s) => { stderr.push(String(s)); return true; } },
    writeFile: (name, contents) => { outputs[name] = contents; },
    baseDir: root,
  });
  if (error) throw new Error(`asc failed for ${entry}:\n${stderr.join('')}`);
  return outputs['out.wasm'];
}

async function buildOne({ name, dir }) {
  const pluginDir = join(root, dir, name);
  const core = await compileCore(join(pluginDir, 'index.ts'));
  // A test plugin that must differ from the standard world brings its own
  // wit/ (a package whose world is named `plugin`).
  let witPath = join(root, 'wit');
  let world = WORLD;
  if (existsSync(join(pluginDir, 'wit'))) {
    witPath = join(pluginDir, 'wit');
    const text = await readFile(join(witPath, 'world.wit'), 'utf8');
    world = `${/^package\s+([^;@]+)/m.exec(text)[1]}/plugin`;
  }
  const embedded = await componentEmbed({ binary: core, witPath, world, stringEncoding: 'utf8' });
  const component = await componentNew(embedded);
  const outDir = join(root, 'dist', dir.replace(/^assembly\//, ''));
  await mkdir(outDir, { recursive: true });
  const out = join(outDir, `${name}.wasm`);
  await writeFile(out, component);
  const sha = createHash('sha256').update(component).digest('hex');
  return { out: relative(root, out), size: component.length, sha };
}

const only = new Set(process.argv.slice(2));
const plugins = [...(await listPlugins('assembly/plugins')), ...(await listPlugins('assembly/test-plugins'))]
  .filter((p) => only.size === 0 || only.has(p.name));
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
