// Generates the contract's vocabulary from wit/, once for each side:
//
//   host/generated/contract.ts           the enums and flags (error-code,
//                                        interest, readiness, shutdown-how,
//                                        log level)
//                                        and every canonical-ABI layout the
//                                        glue reads or writes
//   assembly/sdk/generated/contract.ts   the same for the SDK's bindings
//
// so that error codes, flag bits, sizes, alignments and field offsets are
// written once, in the WIT, and nowhere by hand. The layouts follow the
// component model's canonical ABI (size, alignment, field offsets of
// records, tuples, variants, options, results, enums, flags, lists and
// strings); test/abi.test.ts checks the two sides that use them against
// stock jco glue, which computes its own.
//
// The WIT files are read with a parser for the subset they use
// (interfaces, worlds, `use`, type aliases, records, variants, enums,
// flags, functions); anything else is an error, not a silent skip.
//
// Usage: node build/contract.mjs          writes both files
//        node build/contract.mjs --check  exits 1 when either is stale
// (test/world-abi.test.ts runs --check.)
import { readFile, writeFile, mkdir, readdir } from 'node:fs/promises';
import { join, resolve, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOST_OUT = join(root, 'host/generated/contract.ts');
const SDK_OUT = join(root, 'assembly/sdk/generated/contract.ts');

// ---- reading WIT ---------------------------------------------------------------

function tokenize(text, file) {
  const tokens = [];
  const re = /\s+|\/\/[^\n]*|\/\*[\s\S]*?\*\/|(->)|([A-Za-z_%][A-Za-z0-9_-]*)|(\d+(?:\.\d+)*(?:-[A-Za-z0-9.]+)?)|([{}()<>,:;=.@/*_])/gy;
  let m;
  while (re.lastIndex < text.length) {
    const at = re.lastIndex;
    m = re.exec(text);
    if (!m) throw new Error(`${file}: cannot read WIT at ${JSON.stringify(text.slice(at, at + 20))}`);
    const tok = m[1] ?? m[2] ?? m[3] ?? m[4];
    if (tok !== undefined) tokens.push(tok);
  }
  return tokens;
}

/** Parses one file: its package, and its interfaces' type definitions and functions. */
function parseFile(text, file) {
  const t = tokenize(text, file);
  let i = 0;
  const peek = () => t[i];
  const next = () => t[i++];
  const expect = (v) => {
    const got = next();
    if (got !== v) throw new Error(`${file}: expected ${v}, got ${got}`);
  };
  // A type expression.
  const type = () => {
    const name = next();
    if (['list', 'option', 'tuple', 'result'].includes(name)) {
      if (name === 'result' && peek() !== '<') return { kind: 'result', ok: null, err: null };
      expect('<');
      const args = [];
      while (peek() !== '>') {
        if (peek() === '_') {
          next();
          args.push(null);
        } else {
          args.push(type());
        }
        if (peek() === ',') next();
      }
      expect('>');
      if (name === 'list') return { kind: 'list', of: args[0] };
      if (name === 'option') return { kind: 'option', of: args[0] };
      if (name === 'tuple') return { kind: 'tuple', of: args };
      return { kind: 'result', ok: args[0], err: args[1] ?? null };
    }
    return { kind: 'name', name };
  };
  const pkg = { name: null, interfaces: {} };
  while (i < t.length) {
    const word = next();
    if (word === 'package') {
      let name = '';
      while (peek() !== ';') name += next();
      next();
      pkg.name = name;
    } else if (word === 'interface') {
      const name = next();
      const iface = { name, types: {}, uses: [], funcs: {} };
      expect('{');
      while (peek() !== '}') {
        const w = next();
        if (w === 'use') {
          let path = '';
          while (peek() !== '.' || t[i + 1] !== '{') path += next();
          next();
          expect('{');
          while (peek() !== '}') {
            iface.uses.push({ from: path, name: next() });
            if (peek() === ',') next();
          }
          expect('}');
          expect(';');
        } else if (w === 'type') {
          const n = next();
          expect('=');
          iface.types[n] = type();
          expect(';');
        } else if (w === 'enum' || w === 'flags') {
          const n = next();
          expect('{');
          const cases = [];
          while (peek() !== '}') {
            cases.push(next());
            if (peek() === ',') next();
          }
          expect('}');
          iface.types[n] = { kind: w, cases };
        } else if (w === 'record') {
          const n = next();
          expect('{');
          const fields = [];
          while (peek() !== '}') {
            const f = next();
            expect(':');
            fields.push({ name: f, type: type() });
            if (peek() === ',') next();
          }
          expect('}');
          iface.types[n] = { kind: 'record', fields };
        } else if (w === 'variant') {
          const n = next();
          expect('{');
          const cases = [];
          while (peek() !== '}') {
            const c = next();
            let payload = null;
            if (peek() === '(') {
              next();
              payload = type();
              expect(')');
            }
            cases.push({ name: c, type: payload });
            if (peek() === ',') next();
          }
          expect('}');
          iface.types[n] = { kind: 'variant', cases };
        } else {
          // name: func(params) [-> result];
          expect(':');
          expect('func');
          expect('(');
          const params = [];
          while (peek() !== ')') {
            const p = next();
            expect(':');
            params.push({ name: p, type: type() });
            if (peek() === ',') next();
          }
          expect(')');
          let result = null;
          if (peek() === '->') {
            next();
            result = type();
          }
          expect(';');
          iface.funcs[w] = { params, result };
        }
      }
      expect('}');
      pkg.interfaces[name] = iface;
    } else if (word === 'world') {
      // Worlds name imports and exports; their types come from interfaces.
      // Exported functions are kept (their results have layouts too).
      const name = next();
      const world = { name, exports: {} };
      expect('{');
      let depth = 1;
      while (depth > 0) {
        const w = next();
        if (w === '{') depth++;
        else if (w === '}') depth--;
        else if (w === 'export' && t[i + 1] === ':' && t[i + 2] === 'func') {
          const fname = next();
          next();
          next();
          let parens = 0;
          do {
            const p = next();
            if (p === '(') parens++;
            if (p === ')') parens--;
          } while (parens > 0);
          let result = null;
          if (peek() === '->') {
            next();
            result = type();
          }
          world.exports[fname] = { result };
        }
      }
      pkg.worlds = { ...pkg.worlds, [name]: world };
    } else {
      throw new Error(`${file}: unexpected ${word} at the top level`);
    }
  }
  return pkg;
}

async function witFiles(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith('.wit')) out.push(join(e.parentPath, e.name));
  }
  return out.sort();
}

// Every interface of every package, by "iface" (this package) and "ns:pkg/iface" (any).
// A directory is one package; one of its files declares its name.
const interfaces = new Map();
const worlds = [];
let ownPackage = null;
const parsed = [];
for (const file of await witFiles(join(root, 'wit')))
  parsed.push({ file, pkg: parseFile(await readFile(file, 'utf8'), relative(root, file)) });
const packageOf = new Map();
for (const { file, pkg } of parsed) if (pkg.name) packageOf.set(dirname(file), pkg.name);
for (const { file, pkg } of parsed) {
  const name = packageOf.get(dirname(file));
  if (!name) throw new Error(`${relative(root, file)}: no file of its directory declares a package`);
  const own = dirname(file) === join(root, 'wit');
  if (own) ownPackage = name;
  const bare = name.replace(/@.*$/, '');
  if (own && pkg.worlds) worlds.push(...Object.values(pkg.worlds));
  for (const iface of Object.values(pkg.interfaces)) {
    iface.package = name;
    interfaces.set(`${bare}/${iface.name}`, iface);
    if (own) interfaces.set(iface.name, iface);
  }
}

/** Resolves a named type in `iface` (its own, or one it uses) to its definition and home interface. */
function resolveName(iface, name) {
  if (iface.types[name]) return { def: iface.types[name], iface };
  const use = iface.uses.find((u) => u.name === name);
  if (!use) throw new Error(`type ${name} is not defined in interface ${iface.name}`);
  const from = interfaces.get(use.from.replace(/@[^/]*$/, '').replace(/@.*$/, '')) ?? interfaces.get(use.from);
  if (!from) throw new Error(`interface ${iface.name} uses ${use.from}, which is not in wit/`);
  return resolveName(from, name);
}

// ---- the canonical ABI's layouts ------------------------------------------------

const PRIMITIVES = {
  bool: [1, 1],
  u8: [1, 1],
  s8: [1, 1],
  u16: [2, 2],
  s16: [2, 2],
  u32: [4, 4],
  s32: [4, 4],
  char: [4, 4],
  f32: [4, 4],
  u64: [8, 8],
  s64: [8, 8],
  f64: [8, 8],
  string: [8, 4],
};
const alignTo = (n, a) => Math.ceil(n / a) * a;
const discriminantSize = (cases) => (cases <= 256 ? 1 : cases <= 65536 ? 2 : 4);

/** { size, align, fields? } of a type in `iface`; fields: name -> offset (records, tuples), or tag/payload (variants). */
function layout(type, iface) {
  if (type === null) return { size: 0, align: 1 };
  switch (type.kind) {
    case 'name': {
      if (PRIMITIVES[type.name]) return { size: PRIMITIVES[type.name][0], align: PRIMITIVES[type.name][1] };
      const { def, iface: home } = resolveName(iface, type.name);
      return layout(def, home);
    }
    case 'list':
      return { size: 8, align: 4, fields: { ptr: 0, len: 4 } };
    case 'enum': {
      const d = discriminantSize(type.cases.length);
      return { size: d, align: d };
    }
    case 'flags': {
      const n = type.cases.length;
      const s = n <= 8 ? 1 : n <= 16 ? 2 : 4 * Math.ceil(n / 32);
      return { size: s, align: Math.min(s, 4) };
    }
    case 'record':
    case 'tuple': {
      const members = type.kind === 'record' ? type.fields.map((f) => [f.name, f.type]) : type.of.map((t, i) => [String(i), t]);
      let size = 0;
      let align = 1;
      const fields = {};
      for (const [name, t] of members) {
        const l = layout(t, iface);
        size = alignTo(size, l.align);
        fields[name] = size;
        size += l.size;
        align = Math.max(align, l.align);
      }
      return { size: alignTo(size, align), align, fields };
    }
    case 'variant':
    case 'option':
    case 'result': {
      const cases =
        type.kind === 'variant' ? type.cases.map((c) => c.type) : type.kind === 'option' ? [null, type.of] : [type.ok, type.err];
      const d = discriminantSize(cases.length);
      let caseAlign = 1;
      let caseSize = 0;
      for (const c of cases) {
        const l = layout(c, iface);
        caseAlign = Math.max(caseAlign, l.align);
        caseSize = Math.max(caseSize, l.size);
      }
      const align = Math.max(d, caseAlign);
      const payload = alignTo(d, caseAlign);
      const fields = { tag: 0, payload };
      // A result's payload with parts (a tuple, a record, a list, a string): where each part is.
      if (type.kind === 'result') {
        for (const [side, t] of [
          ['ok', type.ok],
          ['err', type.err],
        ]) {
          if (t === null) continue;
          const l = t.kind === 'name' && t.name === 'string' ? { fields: { ptr: 0, len: 4 } } : layout(t, iface);
          for (const [k, v] of Object.entries(l.fields ?? {})) fields[`${side}-${k}`] = payload + v;
        }
      }
      return { size: alignTo(payload + caseSize, align), align, fields };
    }
    default:
      throw new Error(`no layout for ${JSON.stringify(type)}`);
  }
}

// ---- what is generated ------------------------------------------------------------

const camel = (s) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
const pascal = (s) => camel(s).replace(/^[a-z]/, (c) => c.toUpperCase());
const upper = (s) => s.replace(/[-.]/g, '_').toUpperCase();

const poll = interfaces.get('poll');
const tcp = interfaces.get('tcp');
const enums = [
  ['error-code', poll],
  ['shutdown-how', tcp],
  ['level', interfaces.get('log')],
  ['kind', interfaces.get('metrics')],
].map(([n, i]) => ({ name: n, cases: resolveName(i, n).def.cases }));
const flags = [
  ['interest', poll],
  ['readiness', poll],
].map(([n, i]) => ({ name: n, cases: resolveName(i, n).def.cases }));

// Layouts: the named types the glue reads or writes, and the result of
// every function whose result does not fit a core value (written at retptr).
const layouts = [];
const addType = (name, iface) => layouts.push({ name, ...layout({ kind: 'name', name }, iface) });
addType('event', poll);
addType('socket-address', tcp);
addType('ip-address', tcp);
addType('context', interfaces.get('types'));
addType('datetime', interfaces.get('wasi:clocks/wall-clock'));
addType('update', interfaces.get('metrics'));
const fitsCoreValue = (t, iface) => {
  if (t === null) return true;
  if (t.kind === 'name' && PRIMITIVES[t.name] && t.name !== 'string') return true;
  if (t.kind === 'name' && !PRIMITIVES[t.name]) {
    const def = resolveName(iface, t.name).def;
    return def.kind === 'enum' || def.kind === 'flags' || (def.kind === 'name' && fitsCoreValue(def, iface));
  }
  return false;
};
// The plugin world's export run's result: what run returns a pointer to.
const plugin = worlds.find((w) => w.name === 'plugin');
if (!plugin?.exports.run) throw new Error('wit/ has no world plugin exporting run');
layouts.push({ name: 'run', ...layout(plugin.exports.run.result, interfaces.get('types')), result: true });
for (const ifaceName of ['poll', 'tcp', 'log', 'limits', 'handover', 'metrics']) {
  const iface = interfaces.get(ifaceName);
  for (const [fname, f] of Object.entries(iface.funcs)) {
    if (fitsCoreValue(f.result, iface)) continue;
    layouts.push({ name: `${ifaceName}.${fname}`, ...layout(f.result, iface), result: true });
  }
}

const header = (tool) => `// Generated by ${tool} from wit/: do not edit. Regenerate with
// \`npm run generate\`; test/world-abi.test.ts fails when this file is stale.
`;

function hostFile() {
  const out = [
    header('build/contract.mjs'),
    `
// The WIT enums, by value, and their names in WIT order.
`,
  ];
  for (const e of enums) {
    out.push(
      `/** wit: ${e.name} */\nexport const enum ${pascal(e.name)} {\n${e.cases.map((c, v) => `  ${pascal(c)} = ${v},`).join('\n')}\n}\n`,
    );
    out.push(`export const ${upper(e.name)}_NAMES = [${e.cases.map((c) => `'${c}'`).join(', ')}] as const;\n`);
  }
  out.push('\n// The WIT flags, by bit.\n');
  for (const f of flags) {
    const prefix = f.name === 'readiness' ? 'READY' : upper(f.name);
    for (const [bit, c] of f.cases.entries()) out.push(`export const ${prefix}_${upper(c)} = ${1 << bit};\n`);
  }
  out.push(`
/**
 * Canonical-ABI layouts in bytes: size, alignment and field offsets (a
 * variant, option or result: its tag at 0 and its payload's offset; a list:
 * its pointer and length). \`poll.wait\` and the like are what a function
 * whose result does not fit a core value writes at its return pointer.
 */
export const LAYOUT = {
`);
  for (const l of layouts) {
    const fields = Object.entries(l.fields ?? {})
      .map(([k, v]) => `${camel(k.replace(/-(\d)/, '$1'))}: ${v}`)
      .join(', ');
    out.push(`  '${l.name}': { size: ${l.size}, align: ${l.align}${fields ? `, ${fields}` : ''} },\n`);
  }
  out.push('} as const;\n');
  return out.join('');
}

function sdkFile() {
  const out = [
    header('build/contract.mjs'),
    `// The SDK's side of the contract: AssemblyScript constants (the host has
// the same in host/generated/contract.ts).
`,
  ];
  for (const e of enums) {
    out.push(
      `\n/** wit: ${e.name} */\nexport enum ${pascal(e.name)} {\n${e.cases.map((c, v) => `  ${pascal(c)} = ${v},`).join('\n')}\n}\n`,
    );
    out.push(`export const ${upper(e.name)}_NAMES: StaticArray<string> = [${e.cases.map((c) => `"${c}"`).join(', ')}];\n`);
  }
  out.push('\n// The WIT flags, by bit.\n');
  for (const f of flags) {
    const prefix = f.name === 'readiness' ? 'READY' : upper(f.name);
    for (const [bit, c] of f.cases.entries()) out.push(`export const ${prefix}_${upper(c)}: u32 = ${1 << bit};\n`);
  }
  out.push('\n// Canonical-ABI layouts in bytes (see host/generated/contract.ts).\n');
  for (const l of layouts) {
    const p = upper(l.name);
    out.push(`export const ${p}_SIZE: usize = ${l.size};\nexport const ${p}_ALIGN: usize = ${l.align};\n`);
    for (const [k, v] of Object.entries(l.fields ?? {})) out.push(`export const ${p}_${upper(k)}: usize = ${v};\n`);
  }
  return out.join('');
}

const files = [
  [HOST_OUT, hostFile()],
  [SDK_OUT, sdkFile()],
];
if (ownPackage === null) throw new Error('wit/ has no package of its own');
if (process.argv.includes('--check')) {
  const stale = [];
  for (const [file, text] of files) {
    const current = await readFile(file, 'utf8').catch(() => null);
    if (current !== text) stale.push(relative(root, file));
  }
  if (stale.length) {
    console.error(`stale: ${stale.join(', ')} (run npm run generate)`);
    process.exit(1);
  }
} else {
  for (const [file, text] of files) {
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, text);
    console.log(`wrote ${relative(root, file)}`);
  }
}
