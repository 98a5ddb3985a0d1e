// `wasmux dev` follows asconfig.json: when its entries move to another
// directory, that directory is watched from then on.
import { describe, it, expect } from 'vitest';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { editFile, lineProject, startDev, askOnce, LISTENING } from '../helpers/dev.js';

describe('wasmux dev: asconfig.json changes', () => {
  it('entries moved to src/: src/ is watched, an edit there reloads', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      const port = Number((await dev.waitFor(LISTENING))[1]);
      const from = dev.output().length;
      await mkdir(join(p.dir, 'src'));
      const moved = join(p.dir, 'src/index.ts');
      await writeFile(moved, (await readFile(p.index, 'utf8')).replace('c.write("PONG\\n");', 'c.write("PONG from src\\n");'));
      const asconfigFile = join(p.dir, 'asconfig.json');
      const asconfig = JSON.parse(await readFile(asconfigFile, 'utf8'));
      asconfig.entries = ['src/index.ts'];
      await writeFile(asconfigFile, JSON.stringify(asconfig, null, 2));
      await dev.waitFor(/wasmux dev: watching \., src\/ now\n/, 20_000, from);
      await dev.waitFor(/reloaded devplug/, 20_000, from);
      expect(await askOnce(port, 'PING')).toBe('PONG from src');

      const from2 = dev.output().length;
      await editFile(moved, 'PONG from src', 'PONG from src, edited');
      await dev.waitFor(/wasmux dev: changed src\/index\.ts; building\n[\s\S]*reloaded devplug/, 20_000, from2);
      expect(await askOnce(port, 'PING')).toBe('PONG from src, edited');
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  });
});
