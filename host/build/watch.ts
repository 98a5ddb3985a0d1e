/**
 * Watching a plugin project's sources for `wasmux dev` (host/cli/dev.ts):
 * which paths, which events count, and one callback per burst.
 *
 * What is watched: the project directory itself, not recursively (its
 * asconfig.json, package.json and any entry at the top), and recursively the
 * top directory of each asconfig.json entry (assembly/ for a `wasmux new`
 * project) and wit/ when there is one. node_modules and the build output are
 * never watched: neither node_modules nor a hidden directory is descended
 * into, an entry under node_modules is not watched, and only sources count
 * (.ts, .json, .wit; not a hidden file, not an editor's backup), so writing
 * build/*.wasm is no event.
 *
 * Editors write a file in several steps (a backup, a rename, a write, a
 * chmod): events are collected until none has come for `debounceMs` (or the
 * first of them is `maxDelayMs` old), then reported once.
 */
import { existsSync, readFileSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { basename, join, normalize, sep } from 'node:path';

export interface WatchedRoot {
  /** Relative to the project ('' for the project directory itself). */
  readonly dir: string;
  readonly recursive: boolean;
}

/** The asconfig.json entries, as written ([assembly/index.ts] when the file names none or cannot be read). */
function entries(projectDir: string, config: string): string[] {
  try {
    const file = JSON.parse(readFileSync(join(projectDir, config), 'utf8')) as { entries?: unknown };
    if (Array.isArray(file.entries) && file.entries.every((e) => typeof e === 'string') && file.entries.length > 0) return file.entries;
  } catch {
    // the build says what is wrong with the file; the default directory is watched meanwhile
  }
  return ['assembly/index.ts'];
}

/** What `wasmux dev` watches in `projectDir`. */
export function watchedRoots(projectDir: string, config = 'asconfig.json'): WatchedRoot[] {
  const roots: WatchedRoot[] = [{ dir: '', recursive: false }];
  const dirs = new Set<string>();
  for (const e of entries(projectDir, config)) {
    const parts = normalize(e)
      .split(sep)
      .filter((p) => p !== '' && p !== '.');
    // An entry at the top is seen by the project's own watch; one outside the project is not watched.
    if (parts.length < 2 || parts[0] === '..' || parts[0] === 'node_modules') continue;
    dirs.add(parts[0]!);
  }
  if (existsSync(join(projectDir, 'wit'))) dirs.add('wit');
  for (const d of [...dirs].sort()) {
    const path = join(projectDir, d);
    if (existsSync(path) && statSync(path).isDirectory()) roots.push({ dir: d, recursive: true });
  }
  return roots;
}

/** Whether a changed path (relative to the project) is a source: what a build reads. */
export function isSource(path: string): boolean {
  const parts = path.split(/[\\/]/);
  if (parts.includes('node_modules')) return false;
  const name = basename(path);
  if (name.startsWith('.') || name.endsWith('~')) return false;
  return /\.(ts|json|wit)$/.test(name) && name !== 'package-lock.json';
}

export interface SourceWatcherOptions {
  /** Quiet time that ends a burst. [100] */
  readonly debounceMs?: number;
  /** A burst is reported at the latest this long after its first event. [1000] */
  readonly maxDelayMs?: number;
  /** Which changed files count (a path relative to the project, `/`-separated). [isSource] */
  readonly counts?: (path: string) => boolean;
}

/** A directory not to descend into: node_modules, or hidden (.git). */
const skipped = (name: string) => name === 'node_modules' || name.startsWith('.');

/**
 * The watch. A recursive root is watched one directory at a time, each
 * with a watch of its own, not with fs.watch's `recursive`: on Linux, Node
 * 20 emulates that with a watch per file, which goes deaf to a file replaced
 * by a rename (sed -i, and editors that save atomically). A directory's own
 * watch sees every entry created, changed, renamed or removed in it; a
 * directory that appears is watched from then on, one that goes is dropped.
 */
export class SourceWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly pending = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private firstAt = 0;
  private closed = false;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly counts: (path: string) => boolean;

  /** Starts watching `roots` of `projectDir`; `onChange` gets the changed sources of each burst (relative paths, sorted; a directory that appeared ends with /). */
  constructor(
    private readonly projectDir: string,
    readonly roots: readonly WatchedRoot[],
    private readonly onChange: (paths: string[]) => void,
    opts: SourceWatcherOptions = {},
  ) {
    this.debounceMs = opts.debounceMs ?? 100;
    this.maxDelayMs = opts.maxDelayMs ?? 1000;
    this.counts = opts.counts ?? isSource;
    try {
      for (const root of roots) this.watchDir(root.dir, root.recursive);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** How many directories are watched (one descriptor each). */
  get directories(): number {
    return this.watchers.size;
  }

  /** Watches `dir` (relative to the project) and, when `recursive`, every directory under it. */
  private watchDir(dir: string, recursive: boolean): void {
    if (this.closed || this.watchers.has(dir)) return;
    const abs = join(this.projectDir, dir);
    const w = watch(abs, (_event, name) => this.event(dir, name === null ? null : String(name), recursive));
    // The directory removed (or unreadable): its watch ends; its parent's saw it go.
    w.on('error', () => this.unwatch(dir));
    this.watchers.set(dir, w);
    if (!recursive) return;
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      if (e.isDirectory() && !skipped(e.name)) this.watchDir(join(dir, e.name), true);
    }
  }

  /** Stops watching `dir` and everything under it. */
  private unwatch(dir: string): void {
    for (const [d, w] of this.watchers) {
      if (d === dir || d.startsWith(`${dir}${sep}`)) {
        w.close();
        this.watchers.delete(d);
      }
    }
  }

  private event(dir: string, name: string | null, recursive: boolean): void {
    if (this.closed) return;
    // No name (some platforms): something in that directory changed.
    if (name === null) {
      this.add(join(dir, '?.ts'));
      return;
    }
    const rel = join(dir, name);
    // A recursive root itself (assembly/) removed and made again (a branch
    // switched): its watch ended with it, the project's sees it come back.
    const isRoot = dir === '' && this.roots.some((r) => r.recursive && r.dir === name);
    if ((recursive || isRoot) && !skipped(name)) {
      let isDir = false;
      try {
        isDir = statSync(join(this.projectDir, rel)).isDirectory();
      } catch {
        // gone: if it was a watched directory, so is its watch
        if (this.watchers.has(rel)) {
          this.unwatch(rel);
          this.add(`${rel}${sep}`);
          return;
        }
      }
      if (isDir) {
        if (this.watchers.has(rel)) return;
        try {
          this.watchDir(rel, true);
        } catch {
          // gone again already
        }
        // Files may have come with it (moved in): a build sees them.
        this.add(`${rel}${sep}`);
        return;
      }
    }
    if (this.counts(rel.split(sep).join('/'))) this.add(rel);
  }

  private add(path: string): void {
    const now = performance.now();
    if (this.pending.size === 0) this.firstAt = now;
    this.pending.add(path.split(sep).join('/'));
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstAt + this.maxDelayMs - now));
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private flush(): void {
    this.timer = null;
    if (this.closed || this.pending.size === 0) return;
    const paths = [...this.pending].sort();
    this.pending.clear();
    this.onChange(paths);
  }

  /** Stops every watch; no callback comes after. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.pending.clear();
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }
}
