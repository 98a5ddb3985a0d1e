/**
 * The room's broadcast at scale: 100 `ws` clients in one room, every client
 * sending; each message must reach each of the other 99 exactly once, in
 * the order its sender sent it, and never come back to its sender. Then
 * the same with a few clients sending bursts of large messages (the
 * sockets fill up, frames queue and are shared between readers).
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { problems, totals, waitFor, withTimeout } from '../helpers/server.js';
import { startWs, openClient, closeWsClients, type WebSocket, type WsServer } from '../helpers/ws.js';

let ws: WsServer;

beforeAll(async () => {
  ws = await startWs();
});

afterEach(() => closeWsClients());

afterAll(async () => {
  closeWsClients();
  await ws?.stop();
});

interface Tally {
  /** Per sender: the sequence numbers received, in arrival order. */
  from: Map<number, number[]>;
  count: number;
  own: number;
  bad: string[];
}

/** Opens `n` clients, each decoding "sender:seq[:padding]" messages into its tally. */
async function room(n: number, server: WsServer = ws): Promise<{ clients: WebSocket[]; tallies: Tally[] }> {
  const clients: WebSocket[] = [];
  const tallies: Tally[] = [];
  for (let i = 0; i < n; i++) {
    const w = await openClient(server.url);
    const t: Tally = { from: new Map(), count: 0, own: 0, bad: [] };
    w.on('message', (data: Buffer, binary: boolean) => {
      t.count++;
      const text = data.toString();
      const m = /^(\d+):(\d+)(:|$)/.exec(text);
      if (!m || binary) {
        t.bad.push(text.slice(0, 40));
        return;
      }
      const sender = Number(m[1]);
      if (sender === i) t.own++;
      let seqs = t.from.get(sender);
      if (!seqs) t.from.set(sender, (seqs = []));
      seqs.push(Number(m[2]));
    });
    clients.push(w);
    tallies.push(t);
  }
  return { clients, tallies };
}

function expectExactlyOnceInOrder(tallies: Tally[], senders: number[], perSender: number): void {
  const expected = Array.from({ length: perSender }, (_, k) => k);
  tallies.forEach((t, i) => {
    expect(t.bad, `client ${i}: malformed messages`).toEqual([]);
    expect(t.own, `client ${i}: own messages received`).toBe(0);
    for (const s of senders) {
      if (s === i) continue;
      expect(t.from.get(s), `client ${i}: messages from ${s}`).toEqual(expected);
    }
  });
}

describe('ws broadcast', () => {
  it('100 clients × 10 messages each: every client gets the other 99 × 10 exactly once, in order per sender', async () => {
    const N = 100,
      M = 10;
    const { clients, tallies } = await room(N);
    expect(totals(ws.server).open).toBe(N);
    const want = (N - 1) * M;
    const done = withTimeout(
      new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (tallies.every((t) => t.count >= want)) {
            clearInterval(check);
            resolve();
          }
        }, 10);
      }),
      30_000,
      `every client receiving ${want} messages`,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; counts: ${tallies.map((t) => t.count).join(',')}`);
    });
    // Everyone talks at once: each sender's messages interleave with all the others'.
    for (let k = 0; k < M; k++) clients.forEach((w, i) => w.send(`${i}:${k}`));
    await done;
    await new Promise((r) => setTimeout(r, 100)); // anything extra (a duplicate) would have come by now
    for (const t of tallies) expect(t.count).toBe(want);
    expectExactlyOnceInOrder(
      tallies,
      clients.map((_, i) => i),
      M,
    );
  }, 60_000);

  // 13 MB leave the senders in one go and the readers live in this same
  // process: with the default maxQueue (1 MiB) they would rightly be
  // evicted as too slow (test/ws/slow-reader.test.ts). A room configured
  // with deep queues must absorb the burst: every message is larger than
  // the output window, so each goes through the shared-frame queues.
  it('20 readers, 3 senders bursting 200 messages of 4-40 KiB each (maxQueue 16 MiB): all delivered, in order', async () => {
    // A second server in this process: a small table keeps the two within its open-file limit.
    const deep = await startWs({ config: 'maxQueue=16777216 maxBuffered=50331648', policy: { maxConnections: 64 } });
    try {
      await burst(deep);
      expect(problems(deep.logs)).toEqual([]);
      expect(deep.server.stats()[0]!.restarts).toBe(0);
    } finally {
      closeWsClients();
      await deep.stop();
    }
  }, 90_000);

  async function burst(server: WsServer): Promise<void> {
    const N = 20,
      SENDERS = [0, 1, 2],
      M = 200;
    const { clients, tallies } = await room(N, server);
    const perClient = (i: number) => SENDERS.filter((s) => s !== i).length * M;
    const done = waitFor(() => tallies.every((t, i) => t.count >= perClient(i)), 60_000);
    for (let k = 0; k < M; k++) {
      for (const s of SENDERS) clients[s]!.send(`${s}:${k}:${'x'.repeat(4096 + ((k * 7919 + s * 104729) % 36_000))}`);
    }
    expect(await done, `counts: ${tallies.map((t) => t.count).join(',')}`).toBe(true);
    tallies.forEach((t, i) => expect(t.count).toBe(perClient(i)));
    expectExactlyOnceInOrder(tallies, SENDERS, M);
  }

  it('logs no warnings or errors throughout', () => {
    expect(problems(ws.logs)).toEqual([]);
  });
});
