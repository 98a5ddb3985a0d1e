// The resp plugin (dist/plugins/resp.wasm) on the simulated network under
// 200 seeds with every fault: its replies are the same as without faults.
// Two clients, each on keys of its own (so that no reply depends on how
// the two interleave), send a seed's pipelined commands: without faults each
// client's commands in one write, with `all` in random pieces of 1 to 40
// bytes; the last is ECHO of a marker, after which the client closes. A
// connection a reset fault hit must have received a prefix of the replies.
import { describe, it, expect, beforeAll } from 'vitest';
import { prepareSimulation, runSimulation, type Net, type SimPlugin } from '../../dist/host/sim/simulate.js';
import { Random } from '../../dist/host/sim/random.js';
import { RESP, fragmented } from './helpers.js';

const SEEDS = 200;
let resp: SimPlugin;
beforeAll(async () => {
  resp = await prepareSimulation(RESP);
});

function command(...args: string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('')}`;
}

function commands(r: Random, who: string): string {
  const value = () => String.fromCharCode(...Array.from({ length: r.int(0, 60) }, () => r.int(97, 122)));
  const out: string[] = [command('PING')];
  for (let i = 0, n = r.int(3, 8); i < n; i++) {
    const key = `${who}:${r.int(1, 3)}`;
    switch (r.int(0, 5)) {
      case 0:
        out.push(command('SET', key, value()));
        break;
      case 1:
        out.push(command('GET', key));
        break;
      case 2:
        out.push(command('MSET', key, value(), `${who}:${r.int(1, 3)}`, value()));
        break;
      case 3:
        out.push(command('INCRBY', `${who}:n`, String(r.int(-5, 5))));
        break;
      case 4:
        out.push(command(r.chance(0.5) ? 'DEL' : 'EXISTS', key));
        break;
      default:
        out.push(command('MGET', key, `${who}:1`, `${who}:2`));
    }
  }
  out.push(command('GET', `${who}:1`), command('ECHO', `done ${who}`));
  return out.join('');
}

interface Outcome {
  text: string;
  reset: boolean;
}

/** `split`: the client writes in random pieces (else each request whole). */
function scenario(seed: number, out: Outcome[], split: boolean) {
  return function* (net: Net) {
    const r = new Random(seed ^ 0x7e57);
    const pieces = split ? new Random(seed ^ 0xf2a9) : null;
    const who = ['a', 'b'];
    const clients = who.map(() => net.connect());
    const texts = who.map((w) => commands(r, w));
    for (let i = 0; i < clients.length; i++) yield* fragmented(clients[i]!, texts[i]!, pieces);
    for (let i = 0; i < clients.length; i++) {
      const c = clients[i]!;
      const marker = `done ${who[i]}\r\n`;
      if (!(yield* net.until(() => c.text.endsWith(marker) || c.wasReset, 10_000)))
        throw new Error(`#${c.id}: no reply to the last command`);
      out.push({ text: c.text, reset: c.wasReset });
      c.close();
    }
  };
}

describe('resp under simulation', () => {
  it(`replies the same under every fault as without faults (${SEEDS} seeds)`, () => {
    let resets = 0;
    let faults = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const clean: Outcome[] = [];
      const c = runSimulation(resp, { scenario: scenario(seed, clean, false), seed });
      expect(c.failure, c.transcript).toBeNull();
      expect(clean[0]!.text).toMatch(/^\+PONG\r\n/);
      expect(clean[0]!.text).not.toMatch(/^-/m); // no command was refused

      const faulty: Outcome[] = [];
      const f = runSimulation(resp, { scenario: scenario(seed, faulty, true), seed, faults: 'all' });
      expect(f.failure, f.transcript).toBeNull();
      faults += f.applied.length;
      for (let i = 0; i < clean.length; i++) {
        if (faulty[i]!.reset) {
          resets++;
          expect(clean[i]!.text.startsWith(faulty[i]!.text), `seed ${seed} #${i + 1} (reset)`).toBe(true);
        } else expect(faulty[i]!.text, `seed ${seed} #${i + 1}\n${f.transcript}`).toBe(clean[i]!.text);
      }
    }
    console.log(`resp: ${SEEDS} seeds, ${faults} faults applied, ${resets} connections reset`);
    expect(faults).toBeGreaterThan(SEEDS);
    // Most seeds compare in full, not only as a prefix: the check stays a strong one.
    expect(resets).toBeLessThan(SEEDS / 4);
  });
});
