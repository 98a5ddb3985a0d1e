// `wasmux dev` ends on SIGTERM or SIGINT with status 0: the port is free
// again, nothing it started is left (its builds are threads, not
// processes); a signal during a build ends it at once, and a second signal
// does not wait for the drain.
import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { editFile, lineClient, lineProject, startDev, askOnce, LISTENING } from '../helpers/dev.js';

/** Whether 127.0.0.1:port can be listened on again. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** The child processes of `pid` (none: `pgrep -P` exits 1). */
function childrenOf(pid: number): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n');
  } catch {
    return [];
  }
}

describe('wasmux dev: signals', () => {
  it('SIGTERM: exit 0, the port free, no process left behind', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      const port = Number((await dev.waitFor(LISTENING))[1]);
      expect(await askOnce(port, 'PING')).toBe('PONG');
      // A rebuild runs in a thread: no process is started for it.
      await editFile(p.index, 'c.write("PONG\\n");', 'c.write("PONG\\n"); // saved again');
      await dev.waitFor(/wasmux dev: changed assembly\/index\.ts; building\n/);
      expect(childrenOf(dev.child.pid!)).toEqual([]);
      const end = await dev.stop('SIGTERM');
      expect(end.code, dev.output()).toBe(0);
      expect(end.signal).toBeNull();
      expect(dev.output()).toContain('wasmux dev: SIGTERM, stopping (draining up to 5000 ms)\n');
      expect(end.ms).toBeLessThan(5000);
      expect(await portFree(port)).toBe(true);
    } finally {
      await dev.stop('SIGKILL');
      await p.remove();
    }
  });

  it('SIGINT during the first build: ends at once with status 0, nothing served', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0'], p.dir);
    try {
      await dev.waitFor(/wasmux dev: building\n/);
      const end = await dev.stop('SIGINT');
      expect(end.code, dev.output()).toBe(0);
      // The build (about 1.5 s here) is not waited for.
      expect(end.ms).toBeLessThan(1000);
      expect(dev.output()).not.toMatch(/listening on|built in/);
    } finally {
      await dev.stop('SIGKILL');
      await p.remove();
    }
  });

  it('a second signal does not wait for an open connection to finish', async () => {
    const p = await lineProject();
    const dev = startDev(['--listen', '127.0.0.1:0', '--drain-timeout', '30000'], p.dir);
    try {
      const port = Number((await dev.waitFor(LISTENING))[1]);
      const client = await lineClient(port);
      expect(await client.ask('PING')).toBe('PONG');
      dev.child.kill('SIGTERM');
      await dev.waitFor(/draining up to 30000 ms/);
      // The open connection is still served while draining.
      expect(await client.ask('ECHO still here')).toBe('still here');
      const end = await dev.stop('SIGTERM');
      expect(end.code, dev.output()).toBe(0);
      expect(end.ms).toBeLessThan(5000);
      expect(dev.output()).toContain('wasmux dev: SIGTERM again, stopping at once\n');
      client.close();
      expect(await portFree(port)).toBe(true);
    } finally {
      await dev.stop('SIGKILL');
      await p.remove();
    }
  });
});
