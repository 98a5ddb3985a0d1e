// host/build/watch.ts, on a real directory: what `wasmux dev` watches, one
// report per burst, a file replaced by a rename seen every time, what is
// not a source ignored, a new directory watched, nothing after close().
import { describe, it, expect, afterEach } from 'vitest';
import { writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SourceWatcher, isSource, watchedRoots } from '../../host/build/watch.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function project(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'wasmux-watch-'));
  dirs.push(dir);
  await mkdir(join(dir, 'assembly/lib'), { recursive: true });
  await mkdir(join(dir, 'node_modules/wasmux'), { recursive: true });
  await mkdir(join(dir, 'build'));
  await writeFile(join(dir, 'asconfig.json'), JSON.stringify({ entries: ['assembly/index.ts'] }));
  await writeFile(join(dir, 'package.json'), '{}');
  await writeFile(join(dir, 'assembly/index.ts'), 'export {};\n');
  await writeFile(join(dir, 'assembly/lib/util.ts'), 'export {};\n');
  return dir;
}

/** A watcher whose reports are collected; `next()` resolves with the next one, or null after `ms`. */
function collect(dir: string) {
  const reports: string[][] = [];
  let wake: (() => void) | null = null;
  const w = new SourceWatcher(
    dir,
    watchedRoots(dir),
    (paths) => {
      reports.push(paths);
      wake?.();
    },
    { debounceMs: 150 },
  );
  const next = async (ms = 3000): Promise<string[] | null> => {
    if (reports.length === 0)
      await new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    wake = null;
    return reports.shift() ?? null;
  };
  return { w, next, reports };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('wasmux dev: watching the sources', () => {
  it("watches the project, each entry's directory and wit/, not node_modules nor the build output", async () => {
    const dir = await project();
    expect(watchedRoots(dir)).toEqual([
      { dir: '', recursive: false },
      { dir: 'assembly', recursive: true },
    ]);
    await mkdir(join(dir, 'wit'));
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'asconfig.json'), JSON.stringify({ entries: ['src/main.ts', 'top.ts', '../elsewhere/x.ts'] }));
    expect(watchedRoots(dir)).toEqual([
      { dir: '', recursive: false },
      { dir: 'src', recursive: true },
      { dir: 'wit', recursive: true },
    ]);
    expect(['assembly/index.ts', 'asconfig.json', 'package.json', 'wit/world.wit'].every(isSource)).toBe(true);
    for (const p of [
      'build/x.wasm',
      'assembly/.index.ts.swp',
      'assembly/index.ts~',
      'node_modules/a/b.ts',
      'package-lock.json',
      'assembly/4913',
    ])
      expect(isSource(p), p).toBe(false);
  });

  it('reports a burst of writes once, and a file replaced by a rename every time', async () => {
    const dir = await project();
    const { w, next } = collect(dir);
    try {
      expect(w.directories).toBe(3); // the project, assembly/, assembly/lib/
      // An editor's save: several writes in a row.
      // (Written synchronously: the burst is not spread by this test's own scheduling.)
      for (let i = 0; i < 5; i++) writeFileSync(join(dir, 'assembly/index.ts'), `export const a = ${i};\n`);
      expect(await next()).toEqual(['assembly/index.ts']);
      expect(await next(300)).toBeNull();
      // Saved atomically (a new file renamed over it), three times: each seen.
      for (let i = 0; i < 3; i++) {
        await writeFile(join(dir, 'assembly/lib/util.ts.new~'), `export const b = ${i};\n`);
        await rename(join(dir, 'assembly/lib/util.ts.new~'), join(dir, 'assembly/lib/util.ts'));
        expect(await next(), `save ${i}`).toEqual(['assembly/lib/util.ts']);
      }
      // Two files and asconfig.json in one burst.
      writeFileSync(join(dir, 'assembly/index.ts'), 'export {};\n');
      writeFileSync(join(dir, 'assembly/lib/util.ts'), 'export {};\n');
      writeFileSync(join(dir, 'asconfig.json'), JSON.stringify({ entries: ['assembly/index.ts'] }));
      expect(await next()).toEqual(['asconfig.json', 'assembly/index.ts', 'assembly/lib/util.ts']);
    } finally {
      w.close();
    }
  });

  it('ignores the build output, node_modules and editor files; watches a new directory; nothing after close()', async () => {
    const dir = await project();
    const { w, next, reports } = collect(dir);
    try {
      await writeFile(join(dir, 'build/devplug.wasm'), 'x');
      await writeFile(join(dir, 'build/devplug.wasm.partial'), 'x');
      await writeFile(join(dir, 'node_modules/wasmux/index.ts'), 'x');
      await writeFile(join(dir, 'assembly/.index.ts.swp'), 'x');
      await writeFile(join(dir, 'assembly/index.ts~'), 'x');
      await writeFile(join(dir, 'package-lock.json'), '{}');
      expect(await next(500)).toBeNull();

      await mkdir(join(dir, 'assembly/more'));
      expect(await next()).toEqual(['assembly/more/']);
      expect(w.directories).toBe(4);
      await writeFile(join(dir, 'assembly/more/thing.ts'), 'export {};\n');
      expect(await next()).toEqual(['assembly/more/thing.ts']);
      // Removed: the file and the directory (its watch dropped).
      await rm(join(dir, 'assembly/more'), { recursive: true });
      expect(await next()).toEqual(['assembly/more/', 'assembly/more/thing.ts']);
      expect(w.directories).toBe(3);

      // The entries' directory removed and made again: watched again.
      await rm(join(dir, 'assembly'), { recursive: true });
      expect(await next()).toContain('assembly/');
      expect(w.directories).toBe(1);
      await mkdir(join(dir, 'assembly'));
      expect(await next()).toEqual(['assembly/']);
      expect(w.directories).toBe(2);
      await writeFile(join(dir, 'assembly/index.ts'), 'export {};\n');
      expect(await next()).toEqual(['assembly/index.ts']);

      // A change still in its debounce when the watcher closes is never reported.
      await writeFile(join(dir, 'assembly/index.ts'), 'export const late = 1;\n');
      w.close();
      expect(w.directories).toBe(0);
      await sleep(300);
      await writeFile(join(dir, 'assembly/index.ts'), 'export const later = 1;\n');
      await sleep(300);
      expect(reports).toEqual([]);
    } finally {
      w.close();
    }
  });
});
