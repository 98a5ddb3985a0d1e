/**
 * Scenarios the test/sim files share, and the plugins they run.
 */
import { fileURLToPath } from 'node:url';
import type { Net, ScenarioStep, SimClient } from '../../dist/host/sim/simulate.js';
import type { Random } from '../../dist/host/sim/random.js';

export const ECHO = fileURLToPath(new URL('../../dist/plugins/echo.wasm', import.meta.url));
export const HTTP = fileURLToPath(new URL('../../dist/plugins/http.wasm', import.meta.url));
export const RESP = fileURLToPath(new URL('../../dist/plugins/resp.wasm', import.meta.url));
export const WS = fileURLToPath(new URL('../../dist/plugins/ws.wasm', import.meta.url));
export const testPlugin = (name: string) => fileURLToPath(new URL(`../../dist/test-plugins/${name}.wasm`, import.meta.url));

/**
 * Echo: `clients` clients each send `chunks` chunks of random bytes (sizes
 * from the simulation's Random, up to `maxChunk`), then half-close; each
 * must get back exactly what it sent, then end of stream. A connection a
 * reset fault hit must have received a prefix of what it sent.
 */
export function echoScenario(clients = 3, chunks = 3, maxChunk = 3000) {
  return function* (net: Net): Generator<ScenarioStep, void, void> {
    const open = Array.from({ length: clients }, () => ({ c: net.connect(), sent: '' }));
    for (let k = 0; k < chunks; k++) {
      for (const o of open) {
        if (o.c.wasReset) continue;
        const bytes = Buffer.alloc(net.random.int(1, maxChunk));
        for (let i = 0; i < bytes.length; i++) bytes[i] = net.random.int(0, 255);
        o.c.write(bytes);
        o.sent += bytes.toString('latin1');
      }
      yield;
    }
    for (const o of open) if (!o.c.wasReset) o.c.shutdown();
    for (const o of open) {
      yield* net.until(() => o.c.ended || o.c.wasReset, 10_000);
      if (o.c.wasReset) {
        if (!o.sent.startsWith(o.c.text)) throw new Error(`#${o.c.id} (reset): got bytes it never sent`);
        continue;
      }
      if (!o.c.ended) throw new Error(`#${o.c.id}: no end of stream (got ${o.c.text.length} of ${o.sent.length} bytes)`);
      if (o.c.text !== o.sent) throw new Error(`#${o.c.id}: got ${o.c.text.length} bytes, not the ${o.sent.length} sent`);
      o.c.close();
    }
  };
}

/**
 * Writes `text` (latin1) in pieces of 1..max bytes drawn from `r`, running the
 * plugin between some of them; `r` null: in one write, then runs the plugin.
 */
export function* fragmented(c: SimClient, text: string, r: Random | null, max = 40): Generator<ScenarioStep, void, void> {
  if (r === null) {
    if (!c.wasReset) c.write(Buffer.from(text, 'latin1'));
    yield;
    return;
  }
  for (let at = 0; at < text.length && !c.wasReset; ) {
    const n = r.int(1, max);
    c.write(Buffer.from(text.slice(at, at + n), 'latin1'));
    at += n;
    if (r.chance(0.5)) yield;
  }
}
