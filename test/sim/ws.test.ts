// The ws plugin (dist/plugins/ws.wasm, a chat room) on the simulated
// network under 200 seeds with every fault: every message reaches the
// other member, whole and in order, and each close is answered with the
// client's code, as without faults. Real RFC 6455 framing: client frames
// masked (masks from the scenario's own Random), messages sometimes sent
// in fragments (continuation frames); without faults each frame is written
// whole, with `all` its bytes go in random pieces of 1 to 30 or 40 bytes.
// When a reset fault hits a connection, the room loses a member mid-way:
// then each client must have received a prefix of the fault-free messages.
import { describe, it, expect, beforeAll } from 'vitest';
import { prepareSimulation, runSimulation, type Net, type SimClient, type SimPlugin } from '../../dist/host/sim/simulate.js';
import { Random } from '../../dist/host/sim/random.js';
import { WS, fragmented } from './helpers.js';

const SEEDS = 200;
let ws: SimPlugin;
beforeAll(async () => {
  ws = await prepareSimulation(WS);
});

const TEXT = 1;
const CONTINUATION = 0;
const CLOSE = 8;

/** A client frame: masked, as RFC 6455 requires of clients (payload latin1 text). */
function frame(r: Random, opcode: number, payload: string, fin = true): string {
  const data = Buffer.from(payload, 'latin1');
  const head = data.length < 126 ? Buffer.from([0, 0x80 | data.length]) : Buffer.from([0, 0x80 | 126, data.length >> 8, data.length & 255]);
  head[0] = (fin ? 0x80 : 0) | opcode;
  const mask = Buffer.from([r.int(0, 255), r.int(0, 255), r.int(0, 255), r.int(0, 255)]);
  for (let i = 0; i < data.length; i++) data[i]! ^= mask[i & 3]!;
  return Buffer.concat([head, mask, data]).toString('latin1');
}

function message(r: Random, text: string): string {
  if (text.length < 2 || r.chance(0.5)) return frame(r, TEXT, text);
  const cut = r.int(1, text.length - 1);
  return frame(r, TEXT, text.slice(0, cut), false) + frame(r, CONTINUATION, text.slice(cut));
}

/** What a client received after the 101: text messages, and the close code, if any. */
function received(c: SimClient): { messages: string[]; close: number | null; head: string } {
  const end = c.text.indexOf('\r\n\r\n');
  const head = end < 0 ? '' : c.text.slice(0, end);
  const buf = Buffer.from(end < 0 ? '' : c.text.slice(end + 4), 'latin1');
  const messages: string[] = [];
  let close: number | null = null;
  let partial = '';
  for (let at = 0; at + 2 <= buf.length; ) {
    const fin = (buf[at]! & 0x80) !== 0;
    const opcode = buf[at]! & 0x0f;
    let len = buf[at + 1]! & 0x7f;
    let start = at + 2;
    if (len === 126) {
      if (start + 2 > buf.length) break;
      len = buf.readUInt16BE(start);
      start += 2;
    } else if (len === 127) throw new Error('a 64-bit length: not sent in these scenarios');
    if (start + len > buf.length) break;
    const payload = buf.subarray(start, start + len);
    at = start + len;
    if (opcode === CLOSE) close = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
    else if (opcode === TEXT || opcode === CONTINUATION) {
      partial += payload.toString('latin1');
      if (fin) {
        messages.push(partial);
        partial = '';
      }
    }
  }
  return { messages, close, head };
}

interface Outcome {
  messages: string[];
  close: number | null;
  reset: boolean;
}

/** `split`: the client writes in random pieces (else each frame whole). */
function scenario(seed: number, out: Outcome[], split: boolean) {
  return function* (net: Net) {
    const r = new Random(seed ^ 0x3e5);
    const pieces = split ? new Random(seed ^ 0xf3a9) : null;
    const clients = [net.connect(), net.connect()];
    for (const c of clients) {
      const key = Buffer.from(Array.from({ length: 16 }, () => r.int(0, 255))).toString('base64');
      const upgrade = `GET /chat HTTP/1.1\r\nHost: sim\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      yield* fragmented(c, upgrade, pieces);
    }
    for (const c of clients) {
      if (!(yield* net.until(() => c.text.includes('\r\n\r\n') || c.wasReset, 10_000))) throw new Error(`#${c.id}: no handshake answer`);
      if (!c.wasReset && !c.text.startsWith('HTTP/1.1 101 ')) throw new Error(`#${c.id}: upgrade refused: ${c.text}`);
    }
    // Each sends its messages; the other receives them.
    const sent = clients.map(() => [] as string[]);
    for (let k = 0, n = r.int(2, 6); k < n; k++) {
      for (let i = 0; i < clients.length; i++) {
        const text = String.fromCharCode(...Array.from({ length: r.int(0, 200) }, () => r.int(97, 122)));
        sent[i]!.push(text);
        if (!clients[i]!.wasReset) yield* fragmented(clients[i]!, message(r, text), pieces, 30);
      }
    }
    for (let i = 0; i < clients.length; i++) {
      const c = clients[i]!;
      const want = sent[1 - i]!.length;
      yield* net.until(() => c.wasReset || clients[1 - i]!.wasReset || received(c).messages.length >= want, 10_000);
    }
    // Each closes with its own code; the server answers with the same code.
    for (const [i, code] of [1000, 4000 + seed].entries()) {
      const c = clients[i]!;
      if (c.wasReset) continue;
      const payload = `${String.fromCharCode(code >> 8, code & 255)}bye`;
      yield* fragmented(c, frame(r, CLOSE, payload), pieces);
      yield* net.until(() => c.wasReset || received(c).close !== null, 10_000);
    }
    for (const c of clients) {
      const got = received(c);
      out.push({ messages: got.messages, close: got.close, reset: c.wasReset });
      c.close();
    }
  };
}

describe('ws under simulation', () => {
  it(`delivers every message and answers every close under every fault, as without faults (${SEEDS} seeds)`, () => {
    let resets = 0;
    let faults = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const clean: Outcome[] = [];
      const c = runSimulation(ws, { scenario: scenario(seed, clean, false), seed });
      expect(c.failure, c.transcript).toBeNull();
      expect(clean.map((o) => o.close)).toEqual([1000, 4000 + seed]);
      expect(clean[0]!.messages.length).toBeGreaterThanOrEqual(2);

      const faulty: Outcome[] = [];
      const f = runSimulation(ws, { scenario: scenario(seed, faulty, true), seed, faults: 'all' });
      expect(f.failure, f.transcript).toBeNull();
      faults += f.applied.length;
      if (faulty.some((o) => o.reset)) {
        resets++;
        for (let i = 0; i < clean.length; i++) {
          expect(clean[i]!.messages.slice(0, faulty[i]!.messages.length), `seed ${seed} #${i + 1} (a reset)`).toEqual(faulty[i]!.messages);
          if (!faulty[i]!.reset) expect(faulty[i]!.close).toBe(clean[i]!.close);
        }
      } else expect(faulty, `seed ${seed}\n${f.transcript}`).toEqual(clean);
    }
    console.log(`ws: ${SEEDS} seeds, ${faults} faults applied, ${resets} seeds with a reset`);
    expect(faults).toBeGreaterThan(SEEDS);
    // Most seeds compare in full, not only as a prefix: the check stays a strong one.
    expect(resets).toBeLessThan(SEEDS / 4);
  });
});
