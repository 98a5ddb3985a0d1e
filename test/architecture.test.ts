// The folder tree is the architecture, and this file holds it to that:
//
//   host/    each folder has a rank; a file imports only from its own folder
//            or from a lower rank (the arrows run one way: no cycle between
//            folders, and the rules never reach up into the glue or the
//            supervisor). The native library (koffi) is reached from ffi/
//            only; the build tools (jco, assemblyscript) are never imported
//            statically, so that running a plugin needs koffi alone (and
//            prom-client, for the admin endpoint's /metrics: supervisor/admin.ts only).
//   generated code  host/generated and assembly/sdk/generated hold only
//            files generated from wit/ (their header says so) that import
//            nothing; nothing generated lives anywhere else.
//   assembly/  the SDK imports only itself (and the AssemblyScript runtime);
//            a plugin imports the SDK and its own folder, never another plugin.
//   the WIT glue  every function of the plugin world's imports is
//            implemented, and nothing else is offered.
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CORE_IMPORTS } from '../host/generated/world-abi.js';
import { hostImports } from '../host/wit/instance.js';
import type { GlueContext } from '../host/wit/context.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * host/'s folders from the bottom up. A file may import from its own folder
 * and from any folder of a lower rank.
 */
const HOST_LAYERS: readonly (readonly string[])[] = [
  ['generated', 'errors.ts'], // derived from wit/; the error type every layer throws
  ['ffi'], //                    the operating system, through koffi
  ['backends'], //               readiness and sockets, one backend per OS family
  ['loader'], //                 reading and judging a plugin file
  ['sandbox'], //                the rules applied to an instance
  ['wit'], //                    the canonical-ABI glue between guest memory and the rules
  ['trace'], //                  recording what the host told an instance, and replaying it
  ['worker'], //                 one instance's thread
  ['sim'], //                    an instance on a simulated network, driven by a scenario
  ['supervisor'], //             instances, restarts, the watchdog, logs
  ['build'], //                  building a plugin, creating a project
  ['index.ts'], //               the library's public API
  ['cli'], //                    the command line
];

function rankOf(top: string): number {
  const rank = HOST_LAYERS.findIndex((layer) => layer.includes(top));
  if (rank < 0) throw new Error(`host/${top} has no rank in HOST_LAYERS: give it one`);
  return rank;
}

function filesUnder(dir: string, ext: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path, ext));
    else if (name.endsWith(ext)) out.push(path);
  }
  return out.sort();
}

/** The modules a source file imports (static, re-exports, dynamic with a literal), comments ignored. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const specs: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)) specs.push(m[1]!);
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.push(m[1]!);
  return specs;
}

/** host/<top>/... → top (a folder, or a file at host/'s top level). */
const topOf = (file: string): string => relative(join(root, 'host'), file).split(sep)[0]!;
const rel = (file: string): string => relative(root, file).split(sep).join('/');

describe('host/: the arrows run one way', () => {
  const files = filesUnder(join(root, 'host'), '.ts');

  it('has a rank for every folder, and finds the files it checks', () => {
    expect(files.length).toBeGreaterThan(50);
    for (const f of files) rankOf(topOf(f));
  });

  it('imports only from the same folder or a lower one', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = topOf(file);
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
        const to = topOf(target);
        expect(to, `${rel(file)} imports ${spec}, outside host/`).not.toBe('..');
        if (to !== from && rankOf(to) >= rankOf(from)) upward.push(`${rel(file)} → ${spec} (${from} may not depend on ${to})`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('reaches the native library from ffi/ only, and needs no build tool to run', () => {
    const found: string[] = [];
    for (const file of files) {
      for (const spec of importsOf(file)) {
        if (spec === 'koffi' && topOf(file) !== 'ffi') found.push(`${rel(file)} imports koffi`);
        if (/^(@bytecodealliance\/|assemblyscript)/.test(spec)) found.push(`${rel(file)} imports ${spec} (a build tool)`);
      }
    }
    expect(found).toEqual([]);
    // What an install of the package brings: koffi and prom-client (exact versions), nothing else.
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies)).toEqual(['koffi', 'prom-client']);
    for (const v of Object.values(pkg.dependencies)) expect(v).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('imports only node: built-ins and koffi from outside host/ (and prom-client from supervisor/admin.ts)', () => {
    const foreign: string[] = [];
    for (const file of files) {
      for (const spec of importsOf(file)) {
        if (spec === 'prom-client' && rel(file).endsWith('supervisor/admin.ts')) continue;
        if (!spec.startsWith('.') && !spec.startsWith('node:') && spec !== 'koffi') foreign.push(`${rel(file)} imports ${spec}`);
      }
    }
    expect(foreign).toEqual([]);
  });
});

describe('generated code is kept apart', () => {
  const HEADER = /^\/\/ Generated by build\/[\w-]+\.mjs from wit\/: do not edit\./;
  const generatedDirs = ['host/generated', 'assembly/sdk/generated'];

  it('holds only generated files, which import nothing', () => {
    for (const dir of generatedDirs) {
      const files = filesUnder(join(root, dir), '.ts');
      expect(files.length, dir).toBeGreaterThan(0);
      for (const f of files) {
        expect(readFileSync(f, 'utf8'), `${rel(f)} has the generated header`).toMatch(HEADER);
        expect(importsOf(f), `${rel(f)} imports nothing`).toEqual([]);
      }
    }
  });

  it('has nothing generated anywhere else', () => {
    const elsewhere = [...filesUnder(join(root, 'host'), '.ts'), ...filesUnder(join(root, 'assembly'), '.ts')]
      .filter((f) => !generatedDirs.some((d) => rel(f).startsWith(`${d}/`)))
      .filter((f) => HEADER.test(readFileSync(f, 'utf8')));
    expect(elsewhere.map(rel)).toEqual([]);
  });
});

describe('assembly/: the SDK stands alone, plugins stand on it', () => {
  const sdk = join(root, 'assembly/sdk');

  it('the SDK imports only itself and the AssemblyScript runtime', () => {
    const out: string[] = [];
    for (const file of filesUnder(sdk, '.ts')) {
      for (const spec of importsOf(file)) {
        if (spec.startsWith('.')) {
          if (!resolve(dirname(file), spec).startsWith(sdk)) out.push(`${rel(file)} → ${spec}`);
        } else if (!spec.startsWith('rt/')) {
          out.push(`${rel(file)} → ${spec}`);
        }
      }
    }
    expect(out).toEqual([]);
  });

  for (const kind of ['plugins', 'test-plugins']) {
    it(`each of assembly/${kind} imports the SDK and its own folder only`, () => {
      const base = join(root, 'assembly', kind);
      const out: string[] = [];
      for (const name of readdirSync(base)) {
        const own = join(base, name);
        for (const file of filesUnder(own, '.ts')) {
          for (const spec of importsOf(file)) {
            const target = spec.startsWith('.') ? resolve(dirname(file), spec) : null;
            const ok = target !== null && (target === sdk || target.startsWith(sdk + sep) || target.startsWith(own + sep));
            if (!ok) out.push(`${rel(file)} → ${spec}`);
          }
        }
      }
      expect(out).toEqual([]);
    });
  }
});

describe("the WIT glue implements the plugin world's imports, and only them", () => {
  it('offers exactly the functions the generated world lists', () => {
    // The glue only builds closures here; none is called. Whatever it reads
    // at construction (a limit, a buffer) it gets from a stand-in that
    // answers every property with itself and converts to 0.
    const anything: object = new Proxy({}, { get: (_t, key) => (key === Symbol.toPrimitive ? () => 0 : anything) });
    const imports = hostImports({ mem: anything, host: anything } as unknown as GlueContext);
    const offered = Object.fromEntries(Object.entries(imports).map(([m, fns]) => [m, Object.keys(fns).sort()]));
    const expected = Object.fromEntries(Object.entries(CORE_IMPORTS).map(([m, fns]) => [m, Object.keys(fns).sort()]));
    expect(offered).toEqual(expected);
  });
});
