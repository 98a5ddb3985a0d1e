// Each fault kind happens when asked for, at a rate or on a schedule, on
// every connection or on one, and a correct plugin copes: echo still
// returns every byte (a reset connection a prefix of them). The plugin's
// outbound connects (refuse, slow-connect) are seen through connect-probe.
// And the spec: parsed, printed back, refused with a clear error.
import { describe, it, expect, beforeAll } from 'vitest';
import { prepareSimulation, runSimulation, type Net, type SimPlugin } from '../../dist/host/sim/simulate.js';
import { FAULT_KINDS, formatFaults, parseFaults } from '../../dist/host/sim/faults.js';
import { ECHO, HTTP, echoScenario, testPlugin } from './helpers.js';

let echo: SimPlugin;
beforeAll(async () => {
  echo = await prepareSimulation(ECHO);
});

/** The echo kinds, each at a rate that makes it happen within a few seeds. */
const ECHO_KINDS: Record<string, string> = {
  'short-read': 'short-read=0.5',
  'short-write': 'short-write=0.5',
  spurious: 'spurious=0.3',
  late: 'late=0.3',
  wouldblock: 'wouldblock=0.3',
  reset: 'reset=0.05',
  'accept-limit': 'accept-limit=0.5',
  stall: 'stall=0.3',
  'clock-jump': 'clock-jump=0.3',
};

describe('fault kinds on echo', () => {
  for (const [kind, spec] of Object.entries(ECHO_KINDS)) {
    it(`${spec}: applied, and echo still returns what was sent (10 seeds)`, () => {
      let applied = 0;
      for (let seed = 1; seed <= 10; seed++) {
        const r = runSimulation(echo, { scenario: echoScenario(), seed, faults: spec });
        expect(r.failure, r.transcript).toBeNull();
        expect(r.applied.every((f) => f.kind === kind)).toBe(true);
        applied += r.applied.length;
      }
      expect(applied).toBeGreaterThan(0);
    });
  }

  it('a schedule: a fault at exactly the first opportunity at or after each step', () => {
    const r = runSimulation(echo, { scenario: echoScenario(), seed: 1, faults: 'wouldblock=@10/30' });
    expect(r.failure, r.transcript).toBeNull();
    expect(r.applied.map((f) => f.kind)).toEqual(['wouldblock', 'wouldblock']);
    expect(r.applied[0]!.step).toBeGreaterThanOrEqual(10);
    expect(r.applied[1]!.step).toBeGreaterThanOrEqual(30);
  });

  it('per connection: short-read#2 hits connection #2 only', () => {
    for (let seed = 1; seed <= 5; seed++) {
      const r = runSimulation(echo, { scenario: echoScenario(), seed, faults: 'short-read#2=1' });
      expect(r.failure, r.transcript).toBeNull();
      expect(r.applied.length).toBeGreaterThan(0);
      expect(new Set(r.applied.map((f) => f.conn))).toEqual(new Set([2]));
    }
  });

  it('a stall fills the send buffer: echo meets would-block and finishes on the writable edge', () => {
    const r = runSimulation(echo, { scenario: echoScenario(1, 2, 20_000), seed: 3, faults: 'stall=@3', pipeBytes: 4096 });
    expect(r.failure, r.transcript).toBeNull();
    expect(r.applied.map((f) => f.kind)).toEqual(['stall']);
    expect(r.transcript).toMatch(
      /#1 plugin send: would-block \(the peer's buffer is full\)\n(.*\n)*.*#1 the peer reads again\n(.*\n)*.*#1 plugin send \d+/,
    );
  });
});

describe('clock jumps reach the guest', () => {
  it("http's Date header: the simulation's wall clock (2026-01-01 00:00:00) without faults, another after a jump", async () => {
    const http = await prepareSimulation(HTTP);
    const date = (faults: string) => {
      let header = '';
      const r = runSimulation(http, {
        seed: 3,
        faults,
        scenario: function* (net: Net) {
          const c = net.connect();
          c.write('GET / HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n');
          yield* net.until(() => c.ended, 1000);
          header = /\r\nDate: ([^\r]*)/.exec(c.text)?.[1] ?? '';
        },
      });
      expect(r.failure, r.transcript).toBeNull();
      return { header, applied: r.applied };
    };
    expect(date('none').header).toBe('Thu, 01 Jan 2026 00:00:00 GMT');
    const jumped = date('clock-jump#0=@1');
    expect(jumped.applied.map((f) => f.kind)).toEqual(['clock-jump']);
    expect(jumped.header).toMatch(/^(Wed, 31 Dec 2025 23|Thu, 01 Jan 2026 00):\d\d:\d\d GMT$/);
    expect(jumped.header).not.toBe('Thu, 01 Jan 2026 00:00:00 GMT');
  });
});

describe("fault kinds on the plugin's outbound connects (connect-probe)", () => {
  const TARGET = '127.0.0.1:9000';
  const probe = () => prepareSimulation(testPlugin('connect-probe'), { connect: [TARGET] });
  const scenario = function* (net: Net) {
    const l = net.listenAt(TARGET);
    yield* net.until(() => l.accepted.length > 0 || net.logs.some((x) => /probes done/.test(x.message)), 2000);
    for (const c of l.accepted) {
      yield* net.until(() => c.text.includes('\n'), 2000);
      c.write('pong\n');
    }
    yield* net.until(() => net.logs.some((x) => /probes done/.test(x.message)), 2000);
  };

  it('refuse=1: the connect is refused (the plugin reads refused)', async () => {
    const r = runSimulation(await probe(), { scenario, seed: 1, faults: 'refuse=1', config: TARGET, peers: [TARGET] });
    expect(r.failure, r.transcript).toBeNull();
    expect(r.applied.map((f) => f.kind)).toEqual(['refuse']);
    expect(r.transcript).toContain(`log info guest: connect ${TARGET} -> refused`);
  });

  it('slow-connect=1: the connect completes later, and the exchange still happens', async () => {
    const r = runSimulation(await probe(), { scenario, seed: 1, faults: 'slow-connect=1', config: TARGET, peers: [TARGET] });
    expect(r.failure, r.transcript).toBeNull();
    expect(r.applied.map((f) => f.kind)).toEqual(['slow-connect']);
    const connected = /^\s*\d+\s+([\d.]+) {2}#1 connected$/m.exec(r.transcript);
    expect(Number(connected![1])).toBeGreaterThan(1000); // the clock started at 1000 ms
    expect(r.transcript).toContain(`log info guest: connect ${TARGET} -> reply pong`);
  });

  it('without faults: the reply arrives at once', async () => {
    const r = runSimulation(await probe(), { scenario, seed: 1, config: TARGET, peers: [TARGET] });
    expect(r.failure, r.transcript).toBeNull();
    expect(r.transcript).toMatch(/^\s*\d+\s+1000\.000 {2}#1 connected$/m);
    expect(r.transcript).toContain(`log info guest: connect ${TARGET} -> reply pong`);
  });
});

describe('the faults spec', () => {
  it('all is every kind; entries apply left to right; the printed spec parses back to the same plan', () => {
    expect(
      formatFaults(parseFaults('all'))
        .split(',')
        .map((e) => e.split('=')[0]),
    ).toEqual([...FAULT_KINDS]);
    const plan = parseFaults('all,reset=0,stall=@5/2,short-read#3=1');
    expect(plan.global.reset).toEqual({ rate: 0 });
    expect(plan.global.stall).toEqual({ at: [2, 5] });
    expect(plan.perConnection[3]).toEqual({ 'short-read': { rate: 1 } });
    expect(parseFaults(formatFaults(plan))).toEqual({ ...plan, global: { ...plan.global, reset: undefined } });
    expect(formatFaults(parseFaults('none'))).toBe('none');
    expect(formatFaults(parseFaults('all,none,late=0.5'))).toBe('late=0.5');
  });

  it.each([
    ['bogus=0.1', /^faults: unknown kind "bogus" \(kinds: short-read, /],
    ['reset=2', /^faults: "reset=2": the rate must be a number from 0 to 1$/],
    ['reset=-0.1', /the rate must be a number from 0 to 1/],
    ['reset', /^faults: "reset" is not kind=rate/],
    ['reset=@x', /a schedule is @step\/step/],
    ['reset#x=1', /is not kind=rate/],
  ])('refuses %s with WASMUX_ERR_BAD_ARGUMENT', (spec, message) => {
    let error: unknown;
    try {
      parseFaults(spec);
    } catch (e) {
      error = e;
    }
    expect((error as { code?: string }).code).toBe('WASMUX_ERR_BAD_ARGUMENT');
    expect((error as Error).message).toMatch(message);
  });
});
