// SIGHUP reads the manifest again: a new config string in it reaches the
// new version (the http plugin's max-uri, told apart by 404 against 414); a
// manifest that no longer parses fails the reload with its code, the CLI
// says so and serves on with the version it had.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backendTargets, startWasmux, stopAll } from '../helpers/backends.js';

const dir = mkdtempSync(join(tmpdir(), 'wasmux-reload-manifest-'));
afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

// A path of `/` and n characters: with max-uri=m, 404 (no such route) below m, 414 from m.
// (A new connection each: one kept alive from before a reload is the old version's to answer.)
const status = (port: number, n: number) =>
  new Promise<number>((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: `/${'u'.repeat(n)}`, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });

const epoll = backendTargets().find((t) => t.name === 'epoll')!;

describe('SIGHUP with --manifest', () => {
  it.skipIf(epoll.skipReason !== null)(
    'reads the manifest again: its config reaches the new version; a broken one is refused',
    async () => {
      const manifest = join(dir, 'host.json');
      const write = (config: string) =>
        writeFileSync(
          manifest,
          JSON.stringify({ plugins: [{ plugin: 'dist/plugins/http.wasm', listen: ['127.0.0.1:0'], workers: 2, config }] }),
        );
      write('max-uri=32');
      const server = startWasmux(epoll, ['run', '--manifest', manifest, '--backend', 'epoll']);
      const port = Number((await server.waitFor(/listening on [^\s,]*:(\d+)/, 'stdout', 15_000))[1]);
      expect(await status(port, 31)).toBe(404);
      expect(await status(port, 32)).toBe(414);

      // The manifest keeps the address with port 0: a reload keeps the port the first start resolved.
      write('max-uri=64');
      server.child.kill('SIGHUP');
      await server.waitFor(/wasmux: http reloaded: version 1 /, 'stderr', 15_000);
      expect(await status(port, 32)).toBe(404);
      expect(await status(port, 64)).toBe(414);

      writeFileSync(manifest, '{"plugins": [');
      server.child.kill('SIGHUP');
      const failed = await server.waitFor(/wasmux: reload failed: (\S+): (.*)/, 'stderr', 15_000);
      expect(failed[1]).toBe('WASMUX_ERR_BAD_ARGUMENT');
      expect(failed[2]).toMatch(/host\.json is not valid JSON.*every plugin serves on$/);
      expect(await status(port, 32)).toBe(404);
      const end = await server.stop('SIGTERM', 10_000);
      expect(end.code).toBe(0);
    },
  );
});
