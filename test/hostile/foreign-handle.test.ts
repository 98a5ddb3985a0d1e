// Handles of one instance used by another instance of the same plugin
// (assembly/test-plugins/foreign-handle, 2 workers). Instances share nothing,
// so this test carries the values across: each instance greets a connection
// with its listener and stream handles (and logs them); the test then has
// the other instance call every handle-taking import on those values.
//
// The check is real isolation, not just an error code: every call gets
// bad-handle; the owning instance's client never receives the bytes the
// other instance tried to send through its handle, and its connection keeps
// working; and sweeping every generation of the owner's stream slot (2^20 in
// the default table, in chunks that stay well inside the CPU budget) from
// the other instance finds nothing but that instance's own live handles.
// An echo plugin served beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import type net from 'node:net';
import { Neighbour, cleanUp, connect, fdBaseline, host, readUntil, settleFds, testPlugin, waitFor } from '../helpers/hostile.js';

afterEach(cleanUp);

interface Peer {
  sock: net.Socket;
  instance: number;
  listener: number;
  stream: number;
  indexBits: number;
}

/** Generations one `sweep` command covers: ~65,000 host calls, a few ms. */
const SWEEP_CHUNK = 65_536;

const hex = (v: number) => v.toString(16);

async function ask(sock: net.Socket, line: string): Promise<string> {
  sock.write(`${line}\n`);
  return (await readUntil(sock, /\n/)).trimEnd();
}

describe('a handle from another instance', () => {
  it("gets bad-handle from every call and never reaches the owner's socket; its neighbour keeps echoing", async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const p = await host(testPlugin('foreign-handle'), { workers: 2 });
    // Ready comes at each instance's first listen, which it closes again (to
    // learn the layout): connect once both say they listen for good.
    await p.line(/^listening on /, 2);

    // Connect until both instances hold one connection (the kernel spreads them).
    const peers = new Map<number, Peer>();
    for (let tries = 0; tries < 200 && peers.size < 2; tries++) {
      const sock = await connect(p.port);
      const hello = await readUntil(sock, /\n/);
      const m = /^hello instance=(\d) listener=([0-9a-f]+) stream=([0-9a-f]+) index-bits=(\d+)\n$/.exec(hello);
      expect(m, hello).not.toBeNull();
      const instance = Number(m![1]);
      if (peers.has(instance)) sock.destroy();
      else peers.set(instance, { sock, instance, listener: parseInt(m![2]!, 16), stream: parseInt(m![3]!, 16), indexBits: Number(m![4]) });
    }
    expect(peers.size).toBe(2);
    // The hostile helpers' table (maxConnections 1024): 1,093 slots, so 11 index bits and 20 generation bits.
    expect([...peers.values()].map((x) => x.indexBits)).toEqual([11, 11]);
    const generations = 2 ** (31 - 11);
    expect(await waitFor(() => p.server.stats().every((s) => s.open === 1), 5000)).toBe(true);

    let probed = 0;
    for (const [owner, user] of [
      [0, 1],
      [1, 0],
    ] as const) {
      const o = peers.get(owner)!;
      const u = peers.get(user)!;
      const own = new Set(
        (await ask(u.sock, 'handles'))
          .split(' ')
          .slice(1)
          .map((h) => parseInt(h, 16)),
      );
      expect(own.size).toBe(2); // its listener and this connection
      for (const v of [o.listener, o.stream]) {
        // A value equal to one of the user's own live handles names the user's own
        // socket (1 chance in 2^20 per value): not a foreign handle there.
        if (own.has(v)) continue;
        const reply = await ask(u.sock, `probe ${hex(v)}`);
        expect(reply).toBe(
          `probe ${hex(v)} recv=bad-handle send=bad-handle peer-address=bad-handle local-address=bad-handle ` +
            'shutdown=bad-handle register=bad-handle reregister=bad-handle deregister=bad-handle accept=bad-handle close=bad-handle',
        );
        probed++;
      }
      // Every generation of the owner's stream slot, from the user instance: only its own handles answer.
      const sweep = async (slot: number) => {
        const found: number[] = [];
        for (let from = 0; from < generations; from += SWEEP_CHUNK) {
          const reply = await ask(u.sock, `sweep ${slot} ${from} ${SWEEP_CHUNK}`);
          found.push(
            .../^sweep \d+ ok=(.*)$/
              .exec(reply)![1]!
              .split(',')
              .filter(Boolean)
              .map((h) => parseInt(h, 16)),
          );
        }
        return found;
      };
      // The sweep finds what is there: over the user's own stream slot, exactly its stream.
      expect(await sweep(u.stream & ((1 << u.indexBits) - 1))).toEqual([u.stream]);
      const found = await sweep(o.stream & ((1 << o.indexBits) - 1));
      for (const h of found) expect(own.has(h), `sweep found 0x${hex(h)}, not a live handle of instance ${user}`).toBe(true);
      // The owner's connection got nothing from those calls and still works.
      expect(await ask(o.sock, 'echo still mine')).toBe('echo still mine');
    }
    // Both listeners are the second handle of their table's first slot: equal values mean both
    // instances drew the same generation salt (1 chance in 2^20), when the
    // values coincide and only the sweep and the owner checks above apply.
    const sameSalt = peers.get(0)!.listener === peers.get(1)!.listener;
    if (!sameSalt) expect(probed).toBeGreaterThanOrEqual(2);
    console.log(
      `foreign-handle: ${probed} foreign handle values probed with 10 calls each, and 2 sweeps of ${generations} generations (plus 2 of the user's own slot)`,
    );

    // Each instance logged its own handles.
    expect(new Set(p.lines(/^hello instance=\d /).map((l) => l.instance))).toEqual(new Set([0, 1]));
    expect(p.logs.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    expect(p.server.exitReasons()).toEqual([null, null]);
    expect(p.server.stats().map((s) => s.open)).toEqual([1, 1]);

    expect(await neighbour.finish()).toBeGreaterThan(5);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
