// The documentation stands on its own:
//
//   no outside notes   no tracked text file mentions working notes that live
//            outside the repository (a sibling `shared/` folder, its design
//            and style notes, its source articles): a clone does not have
//            them, so a reference to them is a dangling one.
//   links resolve   every relative link in the README, docs/, CONTRIBUTING,
//            bench/README.md and the templates' READMEs names a file or
//            folder of the repository. Build output (dist/, .cache/) does not
//            count: it is ignored by git, so a fresh clone lacks it.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** This file names the patterns it looks for, so it leaves itself out. */
const SELF = 'test/docs.test.ts';

/** `git ls-files -z <args>` at the root, or null when this is not a git checkout (or git is missing). */
function gitFiles(args: string[]): string[] | null {
  try {
    const out = execFileSync('git', ['ls-files', '-z', ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\0').filter((f) => f !== '');
  } catch {
    return null;
  }
}

const tracked = gitFiles([]);
// A link may also name a file not committed yet but not ignored either
// (a new page, before its first commit).
const present = gitFiles(['--cached', '--others', '--exclude-standard']);
const skip = tracked === null || present === null ? 'not a git checkout, or git is not installed' : null;

/**
 * The file's text; for a symbolic link, the path it points to (what git
 * stores). Null for a binary file (a NUL byte early on, git's own test) or
 * one deleted since it was added.
 */
function textOf(file: string): string | null {
  const path = join(root, file);
  const stat = lstatSync(path, { throwIfNoEntry: false });
  if (stat === undefined) return null;
  if (stat.isSymbolicLink()) return readlinkSync(path);
  if (!stat.isFile()) return null;
  const bytes = readFileSync(path);
  if (bytes.subarray(0, 8000).includes(0)) return null;
  return bytes.toString('utf8');
}

// ---- no outside notes ---------------------------------------------------------------------

/**
 * What must not be mentioned. `../shared` is matched as a path segment, so
 * that an import of a module named shared.js (`../shared.js`) is not taken
 * for it; the file names are matched case-sensitively, so that
 * docs/design.md is not taken for the outside DESIGN.md.
 */
const OUTSIDE: readonly { readonly name: string; readonly pattern: RegExp }[] = [
  { name: '../shared', pattern: /\.\.\/shared(?![\w.-])/ },
  { name: '/work/shared', pattern: /\/work\/shared\b/ },
  { name: 'DESIGN.md', pattern: /\bDESIGN\.md\b/ },
  { name: 'STYLE.md', pattern: /\bSTYLE\.md\b/ },
  { name: 'seeds/', pattern: /\bseeds\// },
];

// ---- links ----------------------------------------------------------------------------------

/** The Markdown files whose links are checked. */
const LINKED_DOCS = /^(README\.md|CONTRIBUTING\.md|bench\/README\.md|docs\/[^/]+\.md|templates\/(.+\/)?README\.md)$/;

interface Link {
  readonly line: number;
  readonly target: string;
}

/**
 * The link targets of a Markdown text: inline links and images, reference
 * definitions, and href/src attributes of inline HTML. Fenced code blocks
 * and code spans are not Markdown, and are left out.
 */
function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  let fence: string | null = null;
  markdown.split('\n').forEach((raw, i) => {
    const opening = /^\s{0,3}(`{3,}|~{3,})/.exec(raw);
    if (fence !== null) {
      if (opening && opening[1]![0] === fence[0] && opening[1]!.length >= fence.length) fence = null;
      return;
    }
    if (opening) {
      fence = opening[1]!;
      return;
    }
    const line = raw.replace(/(`+)[^`][\s\S]*?\1/g, '');
    const add = (target: string) => links.push({ line: i + 1, target: target.replace(/^<(.*)>$/, '$1') });
    for (const m of line.matchAll(/\]\(\s*(<[^>]*>|[^\s)]+)/g)) add(m[1]!);
    const definition = /^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)/.exec(line);
    if (definition) add(definition[1]!);
    for (const m of line.matchAll(/\b(?:href|src)\s*=\s*"([^"]*)"/g)) add(m[1]!);
  });
  return links;
}

/** Whether a target is a link into the repository (not a URL, an e-mail address or an anchor on the same page). */
function isRelative(target: string): boolean {
  return target !== '' && !target.startsWith('#') && !target.startsWith('//') && !/^[a-z][a-z0-9+.-]*:/i.test(target);
}

describe.skipIf(skip !== null)(`the documentation${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const files = tracked ?? [];
  const presentFiles = new Set(present ?? []);
  const presentDirs = new Set<string>();
  for (const f of presentFiles) for (let d = posix.dirname(f); d !== '.'; d = posix.dirname(d)) presentDirs.add(d);

  it('finds the files it checks', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain('README.md');
    expect(files).toContain('package.json');
  });

  it('mentions no notes kept outside the repository', () => {
    const found: string[] = [];
    for (const file of files) {
      if (file === SELF) continue;
      const text = textOf(file);
      if (text === null) continue;
      text.split('\n').forEach((line, i) => {
        for (const { name, pattern } of OUTSIDE) if (pattern.test(line)) found.push(`${file}:${i + 1}: mentions ${name}`);
      });
    }
    expect(found).toEqual([]);
  });

  it('links only to files and folders of the repository', () => {
    const docs = [...presentFiles].filter((f) => LINKED_DOCS.test(f)).sort();
    expect(docs).toContain('README.md');
    expect(docs).toContain('bench/README.md');
    const broken: string[] = [];
    let checked = 0;
    for (const doc of docs) {
      const text = textOf(doc);
      if (text === null) continue;
      for (const { line, target } of linksOf(text)) {
        if (!isRelative(target)) continue;
        let path = target.replace(/[?#].*$/, '');
        if (path === '') continue;
        // A template's README is copied into a new project with the
        // placeholders filled in; such a path names no file here.
        if (path.includes('{{')) continue;
        try {
          path = decodeURIComponent(path);
        } catch {
          broken.push(`${doc}:${line}: ${target} (malformed escape)`);
          continue;
        }
        // A leading slash means the repository's root, as on GitHub.
        const candidates = [path.startsWith('/') ? path.slice(1) : posix.join(posix.dirname(doc), path)];
        // `wasmux new` writes templates/common/ beside the template's own
        // files, so a template's README may link to either.
        const template = /^templates\/([^/]+)\//.exec(doc);
        if (template && template[1] !== 'common' && !path.startsWith('/')) {
          candidates.push(posix.join('templates/common', posix.relative(`templates/${template[1]}`, posix.join(posix.dirname(doc), path))));
        }
        checked++;
        const found = candidates.some((c) => {
          const p = posix.normalize(c).replace(/\/$/, '');
          return !p.startsWith('..') && (presentFiles.has(p) || presentDirs.has(p) || p === '.');
        });
        if (!found) broken.push(`${doc}:${line}: ${target}`);
      }
    }
    expect(broken).toEqual([]);
    // docs/design.md alone links to a dozen files: finding none means the parser broke.
    expect(checked).toBeGreaterThan(10);
  });
});
