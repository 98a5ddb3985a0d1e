// `wasmux dev --policy <file>`: the file is watched. A change reloads the
// version served with the new policy, without a build (the same sha256); a
// policy that cannot be used (not JSON, a bad knob, a listen address the
// server does not serve) is said and the one before stays; the versions
// built next keep the policy in force. A policy file among the project's
// sources is the policy watch's: its change starts no build.
import { describe, it, expect } from 'vitest';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LISTENING, askOnce, editFile, lineClient, lineProject, startDev } from '../helpers/dev.js';

const ADMIN = /wasmux: admin endpoint on http:\/\/127\.0\.0\.1:(\d+)\n/;
const POLICY_RELOADED = /wasmux dev: reloaded devplug with policy \S+: sha256 ([0-9a-f]{64}) \(ready in \d+ ms\)\n/;
const NOT_APPLIED = /wasmux dev: policy \S+ not applied; still serving with the policy before it; waiting for a change\n/;

/** Writes the policy the way an editor that saves atomically does. */
async function savePolicy(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp~`, text);
  await rename(`${file}.tmp~`, file);
}

async function maxConnections(adminPort: number): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${adminPort}/plugins`, { signal: AbortSignal.timeout(5_000) });
  return (await r.json()).plugins[0].policy.maxConnections;
}

/** How many of `n` connections held open at once are answered (the others are closed at accept, over maxConnections). */
async function answeredAtOnce(port: number, n: number): Promise<number> {
  const clients = await Promise.all(Array.from({ length: n }, () => lineClient(port)));
  const replies = await Promise.all(clients.map((c) => c.ask('PING').catch(() => 'closed')));
  for (const c of clients) c.close();
  return replies.filter((r) => r.startsWith('PONG')).length;
}

describe('wasmux dev --policy: the file is watched', () => {
  it('a change reloads the version served with it, without a build; a bad one is said and the one before stays', async () => {
    const p = await lineProject();
    const elsewhere = await mkdtemp(join(tmpdir(), 'wasmux-dev-policy-'));
    const policy = join(elsewhere, 'policy.json');
    await writeFile(policy, JSON.stringify({ maxConnections: 1 }));
    const dev = startDev(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--policy', policy], p.dir);
    try {
      const adminPort = Number((await dev.waitFor(ADMIN))[1]);
      const first = await dev.waitFor(LISTENING);
      const port = Number(first[1]);
      expect(await maxConnections(adminPort)).toBe(1);
      expect(await answeredAtOnce(port, 2)).toBe(1);

      // A good change: reloaded with it, the same version, no build.
      let from = dev.output().length;
      await savePolicy(policy, JSON.stringify({ maxConnections: 3 }));
      const r = await dev.waitFor(POLICY_RELOADED, 20_000, from);
      expect(r[1]).toBe(first[2]);
      expect(dev.devLines(from)).toEqual([`wasmux dev: changed policy ${policy}; reloading`, r[0].trimEnd()]);
      expect(await maxConnections(adminPort)).toBe(3);
      expect(await answeredAtOnce(port, 3)).toBe(3);

      // Not JSON, then a knob out of range: each said, the policy before stays.
      for (const [text, code] of [
        ['{"maxConnections": ', 'WASMUX_ERR_BAD_POLICY'],
        [JSON.stringify({ maxConnections: -1 }), 'WASMUX_ERR_BAD_POLICY'],
        [JSON.stringify({ listen: ['127.0.0.1:1'] }), 'WASMUX_ERR_RELOAD'],
      ] as const) {
        from = dev.output().length;
        await savePolicy(policy, text);
        await dev.waitFor(NOT_APPLIED, 20_000, from);
        expect(dev.output().slice(from)).toContain(`wasmux: error ${code}: `);
        expect(await maxConnections(adminPort)).toBe(3);
      }

      // A source edit after them is served with the policy in force.
      from = dev.output().length;
      await editFile(p.index, 'c.write("PONG\\n");', 'c.write("PONG v2\\n");');
      await dev.waitFor(/wasmux dev: reloaded devplug: sha256 /, 30_000, from);
      expect(await askOnce(port, 'PING')).toBe('PONG v2');
      expect(await maxConnections(adminPort)).toBe(3);
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      await rm(elsewhere, { recursive: true, force: true });
      expect(end.code, dev.output()).toBe(0);
    }
  }, 90_000);

  it('a policy and a source saved at once (one burst or two): the policy is applied or refused first, then the build; a refused policy does not hold up the build', async () => {
    const p = await lineProject();
    const elsewhere = await mkdtemp(join(tmpdir(), 'wasmux-dev-policy-'));
    // Any name: a hidden one that is no source file kind is watched all the same.
    const policy = join(elsewhere, '.wasmux-policy');
    await writeFile(policy, JSON.stringify({ maxConnections: 1 }));
    const dev = startDev(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--policy', policy], p.dir);
    try {
      const adminPort = Number((await dev.waitFor(ADMIN))[1]);
      const port = Number((await dev.waitFor(LISTENING))[1]);

      // Saved as it is: nothing reloaded.
      let from = dev.output().length;
      await savePolicy(policy, JSON.stringify({ maxConnections: 1 }));
      await dev.waitFor(/wasmux dev: policy \S+ saved unchanged; not reloaded\n/, 20_000, from);
      expect(dev.output().slice(from)).not.toMatch(/reloaded devplug/);

      // A refused policy (a listen address not served) and a source edit in one burst.
      from = dev.output().length;
      await savePolicy(policy, JSON.stringify({ maxConnections: 2, listen: ['127.0.0.1:1'] }));
      await editFile(p.index, 'c.write("PONG\\n");', 'c.write("PONG v2\\n");');
      await dev.waitFor(NOT_APPLIED, 20_000, from);
      await dev.waitFor(/wasmux dev: reloaded devplug: sha256 /, 30_000, from);
      expect(await askOnce(port, 'PING')).toBe('PONG v2');
      expect(await maxConnections(adminPort)).toBe(1);

      // A good policy and a source edit in one burst: both in force.
      from = dev.output().length;
      await savePolicy(policy, JSON.stringify({ maxConnections: 2 }));
      await editFile(p.index, 'c.write("PONG v2\\n");', 'c.write("PONG v3\\n");');
      await dev.waitFor(/wasmux dev: reloaded devplug: sha256 /, 30_000, from);
      await expect.poll(() => maxConnections(adminPort), { timeout: 10_000 }).toBe(2);
      expect(await askOnce(port, 'PING')).toBe('PONG v3');
      expect(await answeredAtOnce(port, 2)).toBe(2);
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      await rm(elsewhere, { recursive: true, force: true });
      expect(end.code, dev.output()).toBe(0);
    }
  }, 90_000);

  it('a policy file in the project directory: its change starts no build', async () => {
    const p = await lineProject();
    const policy = join(p.dir, 'policy.json');
    await writeFile(policy, JSON.stringify({ maxConnections: 1 }));
    const dev = startDev(['--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--policy', 'policy.json'], p.dir);
    try {
      const adminPort = Number((await dev.waitFor(ADMIN))[1]);
      await dev.waitFor(LISTENING);
      const from = dev.output().length;
      await savePolicy(policy, JSON.stringify({ maxConnections: 2 }));
      await dev.waitFor(POLICY_RELOADED, 20_000, from);
      expect(await maxConnections(adminPort)).toBe(2);
      // Nothing more comes of it: no build.
      await new Promise((r) => setTimeout(r, 500));
      expect(dev.devLines(from)).toHaveLength(2);
      expect(dev.output().slice(from)).not.toMatch(/building|sha256 unchanged/);
    } finally {
      const end = await dev.stop('SIGTERM');
      await p.remove();
      expect(end.code, dev.output()).toBe(0);
    }
  }, 60_000);
});
