// `wasmux dev` reloads in place: an edit is built and reloaded on the same
// port, one line saying the old and new sha256 and the build's time; a
// connection opened before the edit is still answered; a build whose bytes
// are those served is not reloaded; edits during a build make one more build.
import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { editFile, lineClient, lineProject, startDev, askOnce, LISTENING } from '../helpers/dev.js';

const RELOADED = /wasmux dev: reloaded devplug: sha256 ([0-9a-f]{64}) -> ([0-9a-f]{64}) \(built in ([\d.]+) s, ready in (\d+) ms\)\n/;

describe('wasmux dev: reload on a change', () => {
  it('an edit is served on the same port; a connection opened before it still works', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      const first = await dev.waitFor(LISTENING);
      const port = Number(first[1]);
      // A client of before the edit, asking all along (a connection idle
      // for a second is closed once its version drains: this one is not).
      const before = await lineClient(port);
      expect(await before.ask('PING')).toBe('PONG');
      let answered = 0;
      let asking = true;
      const pinger = (async () => {
        while (asking) {
          expect(await before.ask('PING')).toBe('PONG');
          answered++;
          await new Promise((r) => setTimeout(r, 200));
        }
      })();

      const from = dev.output().length;
      await editFile(p.index, 'c.write("PONG\\n");', 'c.write("PONG v2\\n");');
      const r = await dev.waitFor(RELOADED, 20_000, from);
      const atReload = answered;
      expect(r[1]).toBe(first[2]);
      expect(r[2]).not.toBe(first[2]);
      expect(Number(r[3])).toBeGreaterThan(0);
      // One build, one reload, nothing else said about it (the server's own log lines aside).
      expect(dev.devLines(from)).toEqual(['wasmux dev: changed assembly/index.ts; building', r[0].trimEnd()]);
      // The file written is the version reloaded.
      const bytes = await readFile(join(p.dir, 'build/devplug-debug.wasm'));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(r[2]);

      expect(await askOnce(port, 'PING')).toBe('PONG v2');
      // The connection of before the edit: still answered after the reload, by the version that accepted it.
      await expect.poll(() => answered, { timeout: 10_000 }).toBeGreaterThanOrEqual(atReload + 3);
      asking = false;
      await pinger;
      before.close();
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });

  it('a change that gives the same bytes (a comment) is built but not reloaded', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      const first = await dev.waitFor(LISTENING);
      const from = dev.output().length;
      await editFile(p.index, 'c.write("PONG\\n");', 'c.write("PONG\\n"); // a comment');
      const m = await dev.waitFor(/wasmux dev: built in [\d.]+ s: sha256 unchanged \(([0-9a-f]{64})\); not reloaded\n/, 20_000, from);
      expect(m[1]).toBe(first[2]);
      expect(dev.output()).not.toMatch(/reloaded devplug/);
      expect(await askOnce(Number(first[1]), 'PING')).toBe('PONG');

      // A new source no entry imports, its name with a newline: built, not reloaded, the name on one line.
      const from2 = dev.output().length;
      await writeFile(join(p.dir, 'assembly/un\nused.ts'), 'export const x = 1;\n');
      await dev.waitFor(/sha256 unchanged[^\n]*not reloaded\n/, 20_000, from2);
      expect(dev.devLines(from2)[0]).toBe('wasmux dev: changed assembly/un\\nused.ts; building');
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });

  it('edits during a build are built once after it, the last one served', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      // The first build loads the toolchain (over a second here; a rebuild
      // takes a fraction of that): two edits, apart, while it runs.
      await dev.waitFor(/wasmux dev: building\n/);
      await new Promise((r) => setTimeout(r, 100));
      await editFile(p.index, 'c.write("PONG\\n");', 'c.write("PONG 1\\n");');
      await new Promise((r) => setTimeout(r, 250));
      await editFile(p.index, 'c.write("PONG 1\\n");', 'c.write("PONG 2\\n");');
      const port = Number((await dev.waitFor(LISTENING))[1]);
      // One more build for both. (Which edits the first build saw depends on
      // when asc read the file: the second is reloaded, or has the bytes served.)
      await dev.waitFor(/; building\n[\s\S]*wasmux dev: (reloaded|built in)[^\n]*\n/);
      const lines = dev.devLines();
      expect(lines.filter((l) => l.endsWith('; building'))).toEqual(['wasmux dev: changed assembly/index.ts; building']);
      expect(await askOnce(port, 'PING')).toBe('PONG 2');
      // And nothing more comes.
      await new Promise((r) => setTimeout(r, 500));
      expect(dev.devLines()).toEqual(lines);
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });
});
