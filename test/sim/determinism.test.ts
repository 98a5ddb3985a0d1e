// A simulation is deterministic: the same plugin, scenario, seed and faults
// give the same transcript, byte for byte (every choice comes from one
// seeded Random; time is virtual, for the host's rules and the guest's
// clocks alike); different seeds give different fault schedules.
import { describe, it, expect, beforeAll } from 'vitest';
import { prepareSimulation, runSimulation, type Net, type SimPlugin } from '../../dist/host/sim/simulate.js';
import { pinFaults } from '../../dist/host/sim/faults.js';
import { ECHO, echoScenario, testPlugin } from './helpers.js';

const SEEDS = 20;
let echo: SimPlugin;

beforeAll(async () => {
  echo = await prepareSimulation(ECHO);
});

describe('determinism', () => {
  it(`same seed, same faults: the same transcript, byte for byte (${SEEDS} seeds, all faults)`, () => {
    const scenario = echoScenario();
    const schedules = new Set<string>();
    for (let seed = 1; seed <= SEEDS; seed++) {
      const a = runSimulation(echo, { scenario, seed, faults: 'all' });
      const b = runSimulation(echo, { scenario, seed, faults: 'all' });
      expect(a.failure, a.transcript).toBeNull();
      expect(Buffer.from(b.transcript).equals(Buffer.from(a.transcript))).toBe(true);
      expect(b.applied).toEqual(a.applied);
      expect(a.applied.length).toBeGreaterThan(0);
      schedules.add(JSON.stringify(a.applied));
    }
    // Different seeds: different schedules (all of them, here).
    expect(schedules.size).toBe(SEEDS);
  });

  it("a scenario's own draws (net.random) are the same with or without faults", () => {
    const draws = (faults: string) => {
      const seen: number[] = [];
      const inner = echoScenario();
      runSimulation(echo, {
        seed: 5,
        faults,
        scenario: function* (net: Net) {
          for (let i = 0; i < 8; i++) seen.push(net.random.next());
          yield* inner(net);
        },
      });
      return seen;
    };
    expect(draws('all')).toEqual(draws('none'));
  });

  it('faults pinned to their steps replay the run a rate chose, fault for fault (100 seeds)', () => {
    const scenario = echoScenario();
    for (let seed = 1; seed <= 100; seed++) {
      const byRate = runSimulation(echo, { scenario, seed, faults: 'all' });
      const pinned = runSimulation(echo, { scenario, seed, faults: pinFaults(byRate.applied) });
      expect(pinned.applied).toEqual(byRate.applied);
      const body = (t: string) => t.slice(t.indexOf('\n'));
      expect(body(pinned.transcript)).toBe(body(byRate.transcript));
    }
  });

  it("time is virtual: the guest's timed waits take exactly their timeout by its own clock, whatever the real time", async () => {
    // wait-timeouts waits 0, 10, 50 and 200 ms (three times each), logs how long each took by its
    // monotonic clock, and returns.
    const plugin = await prepareSimulation(testPlugin('wait-timeouts'));
    const scenario = function* (net: Net) {
      yield net.sleep(5000);
    };
    const a = runSimulation(plugin, { scenario, seed: 7 });
    await new Promise((r) => setTimeout(r, 30));
    const b = runSimulation(plugin, { scenario, seed: 7 });
    expect(b.transcript).toBe(a.transcript);
    for (const ms of [0, 10, 50, 200]) {
      expect(a.transcript.split(`log info guest: wait ${ms} ms: 0 events in ${ms * 1000} us`).length - 1).toBe(3);
    }
    // It returned while the scenario still slept: that fails the seed, and says why.
    expect(a.end.reason).toBe('returned');
    expect(a.failure).toBe("the plugin's run returned before the scenario finished");
  });

  it('one event per transcript line: text with control characters is escaped', () => {
    const r = runSimulation(echo, {
      seed: 1,
      scenario: function* (net: Net) {
        net.note('two\nlines and a \\ and \u0001');
        yield;
      },
    });
    expect(r.failure).toBeNull();
    expect(r.transcript).toMatch(/^ +\d+ +[\d.]+ {2}scenario: two\\nlines and a \\\\ and \\x01$/m);
  });
});
