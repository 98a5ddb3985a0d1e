/**
 * The scenario `wasmux test` runs without --scenario: meaningful for any
 * plugin that listens, whatever its protocol. Three clients connect one
 * after another, each sends one to three chunks of random bytes (1 to 200
 * each), lets the plugin run, and closes. It checks that:
 *
 *   - the plugin listens where it was told (no connect is refused);
 *   - it accepts every connection;
 *   - it closes each connection within 5 s (virtual) of the client closing it;
 *   - it neither traps nor returns meanwhile (every scenario checks that).
 */
import type { Net, ScenarioStep } from './simulate.js';

const CLIENTS = 3;
const CLOSE_WITHIN_MS = 5000;

export function* defaultScenario(net: Net): Generator<ScenarioStep, void, void> {
  if (net.listen.length === 0) throw new Error('the default scenario needs a listen address');
  for (let i = 0; i < CLIENTS; i++) {
    const c = net.connect();
    if (c.refused) throw new Error(`client #${c.id}: connect to ${net.listen[0]} refused: the plugin does not listen there`);
    const chunks = net.random.int(1, 3);
    for (let k = 0; k < chunks; k++) {
      if (c.wasReset) break;
      const bytes = new Uint8Array(net.random.int(1, 200));
      for (let b = 0; b < bytes.length; b++) bytes[b] = net.random.int(0, 255);
      c.write(bytes);
      yield;
    }
    if (!(yield* net.until(() => c.accepted, CLOSE_WITHIN_MS))) throw new Error(`client #${c.id}: never accepted`);
    c.close();
    if (!(yield* net.until(() => c.closedByPlugin, CLOSE_WITHIN_MS))) {
      throw new Error(`client #${c.id}: the plugin did not close the connection within ${CLOSE_WITHIN_MS} ms of the client closing it`);
    }
  }
}
