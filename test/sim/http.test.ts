// The http plugin (dist/plugins/http.wasm) on the simulated network under
// 200 seeds with every fault: its responses do not depend on how requests
// were fragmented, delayed or interleaved. Each seed's requests (from a
// Random of the scenario's own) run once without faults, each written whole,
// and once with `all`, written in random pieces of 1 to 40 bytes; the
// responses, the Date header aside (the wall clock jumps), must be the same.
// A connection a reset fault hit must have received a prefix of them.
import { describe, it, expect, beforeAll } from 'vitest';
import { prepareSimulation, runSimulation, type Net, type SimPlugin } from '../../dist/host/sim/simulate.js';
import { Random } from '../../dist/host/sim/random.js';
import { HTTP, fragmented } from './helpers.js';

const SEEDS = 200;
let http: SimPlugin;
beforeAll(async () => {
  http = await prepareSimulation(HTTP);
});

function requests(r: Random): [string, string] {
  const body = String.fromCharCode(...Array.from({ length: r.int(0, 300) }, () => r.int(32, 126)));
  const a =
    'GET / HTTP/1.1\r\nHost: sim\r\n\r\n' +
    `POST /echo HTTP/1.1\r\nHost: sim\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
    'GET /missing HTTP/1.1\r\nHost: sim\r\n\r\n' +
    'DELETE / HTTP/1.1\r\nHost: sim\r\n\r\n' +
    'GET /?q=1 HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n';
  const chunks = [body.slice(0, 10), body.slice(10, 100), body.slice(100)].filter((s) => s.length > 0);
  const b =
    'POST /echo HTTP/1.1\r\nHost: sim\r\nTransfer-Encoding: chunked\r\n\r\n' +
    chunks.map((s) => `${s.length.toString(16)}\r\n${s}\r\n`).join('') +
    '0\r\n\r\n' +
    'HEAD / HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n';
  return [a, b];
}

interface Outcome {
  text: string;
  reset: boolean;
}

/** `split`: the client writes in random pieces (else each request whole). */
function scenario(seed: number, out: Outcome[], split: boolean) {
  return function* (net: Net) {
    const r = new Random(seed ^ 0x5eed);
    const pieces = split ? new Random(seed ^ 0xf1a9) : null;
    const texts = requests(r);
    const clients = texts.map(() => net.connect());
    for (let i = 0; i < clients.length; i++) yield* fragmented(clients[i]!, texts[i]!, pieces);
    for (const c of clients) {
      if (!(yield* net.until(() => c.ended || c.wasReset, 10_000))) throw new Error(`#${c.id}: not closed after Connection: close`);
      out.push({ text: c.text.replace(/\r\nDate: [^\r]*/g, '\r\nDate: -'), reset: c.wasReset });
      c.close();
    }
  };
}

describe('http under simulation', () => {
  it(`answers the same under every fault as without faults (${SEEDS} seeds)`, () => {
    let resets = 0;
    let faults = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const clean: Outcome[] = [];
      const c = runSimulation(http, { scenario: scenario(seed, clean, false), seed });
      expect(c.failure, c.transcript).toBeNull();
      expect(clean.every((o) => !o.reset)).toBe(true);
      expect(clean[0]!.text).toMatch(/^HTTP\/1\.1 200 OK\r\n(.*\r\n)*\r\nHello, wasmux!\n/);
      expect(clean[0]!.text.match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(5);
      expect(clean[1]!.text.match(/HTTP\/1\.1 \d{3} /g)).toHaveLength(2);

      const faulty: Outcome[] = [];
      const f = runSimulation(http, { scenario: scenario(seed, faulty, true), seed, faults: 'all' });
      expect(f.failure, f.transcript).toBeNull();
      faults += f.applied.length;
      for (let i = 0; i < clean.length; i++) {
        if (faulty[i]!.reset) {
          resets++;
          expect(clean[i]!.text.startsWith(faulty[i]!.text), `seed ${seed} #${i + 1} (reset)`).toBe(true);
        } else expect(faulty[i]!.text, `seed ${seed} #${i + 1}\n${f.transcript}`).toBe(clean[i]!.text);
      }
    }
    console.log(`http: ${SEEDS} seeds, ${faults} faults applied, ${resets} connections reset`);
    expect(faults).toBeGreaterThan(SEEDS);
    // Most seeds compare in full, not only as a prefix: the check stays a strong one.
    expect(resets).toBeLessThan(SEEDS / 4);
  });
});
