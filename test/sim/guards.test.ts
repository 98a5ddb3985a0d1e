// How a simulated run ends when it cannot end well: a plugin that never goes
// quiet, a scenario that yields with nothing happening, a scenario that
// throws or yields what is not a step, a plugin that traps. Each is a
// failure with a message that says which, and none of them hangs.
import { describe, it, expect, beforeAll } from 'vitest';
import { prepareSimulation, runSimulation, type Net, type SimPlugin } from '../../dist/host/sim/simulate.js';
import { ECHO, echoScenario, testPlugin } from './helpers.js';

let echo: SimPlugin;
beforeAll(async () => {
  echo = await prepareSimulation(ECHO);
});

describe('guards', () => {
  it('a plugin that keeps finding events (a spurious event at every wait) fails after maxBusyWaits', () => {
    const r = runSimulation(echo, { scenario: echoScenario(1, 1, 10), seed: 1, faults: 'spurious=1', maxBusyWaits: 500 });
    expect(r.failure).toBe('the plugin did not go quiet in 500 waits (it keeps finding events, or polls without blocking)');
    expect(r.end.reason).toBe('stopped');
    expect(r.transcript).toMatch(/FAILURE: the plugin did not go quiet in 500 waits/);
  });

  it('a scenario that yields again and again with nothing happening fails', () => {
    const r = runSimulation(echo, {
      seed: 1,
      scenario: function* () {
        for (;;) yield;
      },
    });
    expect(r.failure).toBe('the scenario yielded 10,000 times with nothing happening in between');
  });

  it('a scenario that sleeps past maxVirtualMs fails', () => {
    const r = runSimulation(echo, {
      seed: 1,
      maxVirtualMs: 60_000,
      scenario: function* (net: Net) {
        for (let i = 0; i < 100; i++) yield net.sleep(10_000);
      },
    });
    expect(r.failure).toBe('the simulation ran past 60000 ms of virtual time');
  });

  it('a scenario that throws, or yields what is not a step, fails with its message', () => {
    const thrown = runSimulation(echo, {
      seed: 1,
      scenario: function* () {
        yield;
        throw new Error('expected 42');
      },
    });
    expect(thrown.failure).toBe('the scenario failed: expected 42');
    const odd = runSimulation(echo, {
      seed: 1,
      scenario: function* () {
        yield { sleepMs: -1 };
      },
    });
    expect(odd.failure).toBe('the scenario yielded {"sleepMs":-1}: yield nothing, or net.sleep(ms)');
  });

  it('a plugin that traps mid-request fails the seed with the trap message a worker would log', async () => {
    const plugin = await prepareSimulation(testPlugin('trap-mid-request'));
    const r = runSimulation(plugin, {
      seed: 1,
      scenario: function* (net: Net) {
        const c = net.connect();
        c.write('hello\ntrap\n');
        yield* net.until(() => c.ended, 1000);
      },
    });
    expect(r.end.reason).toBe('trapped');
    expect(r.end.message).toMatch(/^unreachable \(linear memory [\d.]+ MiB of 64 MiB allowed\)$/);
    expect(r.failure).toBe(`the plugin trapped before the scenario finished: ${r.end.message}`);
    expect(r.transcript).toContain('#1 plugin send 6 "hello\\n"');
    expect(r.transcript).toContain('log info guest: trapping mid-request');
  });
});
