// host/build/build-thread.ts: the builds of `wasmux dev`, in a thread kept
// from one build to the next; diagnostics through the callback, a failed
// build's code, a cancelled build, a new thread after restart().
import { describe, it, expect } from 'vitest';
import { BuildThread } from '../../dist/host/build/build-thread.js';
import { WasmuxError } from '../../dist/host/index.js';
import { editFile, lineProject } from '../helpers/dev.js';

describe('wasmux dev: the build thread', () => {
  it('builds again on the same thread; a failure rejects with its code after its diagnostics; cancelled, then anew', async () => {
    const p = await lineProject();
    const thread = new BuildThread();
    const input = { projectDir: p.dir, target: 'debug', isTTY: false };
    try {
      const diagnostics: string[] = [];
      const first = await thread.build(input, (t) => diagnostics.push(t));
      expect(first.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(first.outFile).toBe(`${p.dir}/build/devplug-debug.wasm`);
      expect(thread.warmBuilds).toBe(0);
      // The same sources on the warm thread: the same bytes.
      const second = await thread.build(input, (t) => diagnostics.push(t));
      expect(thread.warmBuilds).toBe(1);
      expect(second.sha256).toBe(first.sha256);
      expect(Buffer.from(second.bytes).equals(Buffer.from(first.bytes))).toBe(true);
      expect(diagnostics).toEqual([]);

      // One build at a time.
      const running = thread.build(input, () => {});
      await expect(thread.build(input, () => {})).rejects.toThrow('a build is already running');
      await running;

      await editFile(p.index, 'c.write("PONG\\n");', 'c.write("PONG\\n";');
      const failed = await thread.build(input, (t) => diagnostics.push(t)).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(WasmuxError);
      expect((failed as WasmuxError).code).toBe('WASMUX_ERR_BUILD');
      expect(diagnostics.join('')).toMatch(/assembly\/index\.ts:\d+:\d+: error TS\d+: /);

      // Cancelled while it runs: rejected, and the next build starts a thread of its own.
      await editFile(p.index, 'c.write("PONG\\n";', 'c.write("PONG\\n");');
      const cancelled = thread.build(input, () => {}).catch((e: Error) => e);
      await thread.restart();
      expect(String(await cancelled)).toMatch(/the build thread ended/);
      const warm = thread.warmBuilds;
      const after = await thread.build(input, () => {});
      expect(after.sha256).toBe(first.sha256);
      expect(thread.warmBuilds).toBe(warm); // on a new thread
    } finally {
      await thread.close();
      await p.remove();
    }
  });
});
