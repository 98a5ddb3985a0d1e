// Loading refuses what wasmux must not run, with a stable code and a clear
// message, and a refused plugin never disturbs a plugin already serving.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { compilePlugin, loadPlugin, serve, WasmuxError, type PluginServer } from '../dist/host/index.js';
import { wasmux } from './helpers/cli.js';

async function refusal(bytes: Uint8Array): Promise<WasmuxError> {
  try {
    await compilePlugin(bytes, 'bad');
  } catch (e) {
    expect(e).toBeInstanceOf(WasmuxError);
    return e as WasmuxError;
  }
  throw new Error('the plugin was accepted');
}

function echoOnce(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.end(text));
    let got = '';
    s.on('data', (d) => (got += d));
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
}

let echo: Uint8Array;
let server: PluginServer;
let dir: string;

beforeAll(async () => {
  echo = await readFile('dist/plugins/echo.wasm');
  dir = await mkdtemp(join(tmpdir(), 'wasmux-loading-'));
  server = await serve({ plugin: 'dist/plugins/echo.wasm', listen: ['127.0.0.1:0'], logger: () => {} });
  await server.ready;
});

afterAll(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('refused plugins', () => {
  it('a text file is not WebAssembly', async () => {
    const e = await refusal(new TextEncoder().encode('#!/bin/sh\necho not a plugin\n'));
    expect(e.code).toBe('WASMUX_ERR_NOT_WASM');
  });

  it('an empty file is not WebAssembly', async () => {
    expect((await refusal(new Uint8Array(0))).code).toBe('WASMUX_ERR_NOT_WASM');
  });

  it('a core module is not a component, and the message says how to make one', async () => {
    const core = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const e = await refusal(core);
    expect(e.code).toBe('WASMUX_ERR_NOT_COMPONENT');
    expect(e.message).toMatch(/core WebAssembly module.*npm run build/);
  });

  it('every truncation of the echo plugin is refused as malformed, never a crash', async () => {
    // Cuts across the whole file, including inside the embedded core module.
    for (let cut = 8; cut < echo.length; cut += Math.max(1, Math.floor(echo.length / 400))) {
      const e = await refusal(echo.subarray(0, cut));
      expect(['WASMUX_ERR_MALFORMED', 'WASMUX_ERR_UNSUPPORTED_SHAPE', 'WASMUX_ERR_MISSING_EXPORT']).toContain(e.code);
    }
  });

  it('a component importing evil:host/fs is refused, naming the import', async () => {
    const e = await refusal(await readFile('dist/test-plugins/foreign-import.wasm'));
    expect(e.code).toBe('WASMUX_ERR_FORBIDDEN_IMPORT');
    expect(e.message).toContain('"evil:host/fs@1.0.0"');
  });

  it('a missing file is an I/O error naming the path', async () => {
    await expect(loadPlugin(join(dir, 'nope.wasm'))).rejects.toMatchObject({ code: 'WASMUX_ERR_IO' });
  });

  it('the CLI reports each refusal with its code and exit status 2', async () => {
    const truncated = join(dir, 'truncated.wasm');
    await writeFile(truncated, echo.subarray(0, echo.length >> 1));
    for (const [file, code] of [
      [truncated, 'WASMUX_ERR_MALFORMED'],
      ['dist/test-plugins/foreign-import.wasm', 'WASMUX_ERR_FORBIDDEN_IMPORT'],
      ['package.json', 'WASMUX_ERR_NOT_WASM'],
    ] as const) {
      const r = await wasmux(['run', file, '--listen', '127.0.0.1:0']);
      expect(r.code, file).toBe(2);
      expect(r.stderr, file).toContain(`wasmux: error ${code}:`);
      expect(r.stderr, file).not.toMatch(/internal error|at .*\.js:\d+/);
    }
  });

  it('the plugin already serving is undisturbed', async () => {
    expect(await echoOnce(server.addresses[0]!.port, 'still here')).toBe('still here');
    expect(server.stats()[0]!.running).toBe(true);
  });
});
