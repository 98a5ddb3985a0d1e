// The sandbox's rules apply under simulation as they do on a real backend
// (the same InstanceHost runs over the simulated network), on virtual time:
// the connection cap closes what is over it, the idle timeout shuts down a
// silent connection after exactly its virtual time, and an outbound connect
// no rule allows is denied.
import { describe, it, expect } from 'vitest';
import { simulate, type Net } from '../../dist/host/index.js';
import { ECHO, testPlugin } from './helpers.js';

describe('the policy under simulation', () => {
  it('maxConnections 1: the second client is closed at accept, the first is served', async () => {
    const r = await simulate({
      plugin: ECHO,
      policy: { maxConnections: 1 },
      seed: 1,
      scenario: function* (net: Net) {
        const a = net.connect();
        a.write('first');
        yield* net.until(() => a.text === 'first', 1000);
        const b = net.connect();
        b.write('second');
        yield* net.until(() => b.wasReset || b.ended, 1000);
        if (!(b.wasReset || b.ended) || b.text !== '') throw new Error(`the second client: ${b.text}`);
        a.write(' again');
        yield* net.until(() => a.text === 'first again', 1000);
        if (a.text !== 'first again') throw new Error(`the first client: ${a.text}`);
      },
    });
    expect(r.failure, r.transcript).toBeNull();
    expect(r.transcript).toContain('log warn host: connection cap reached (maxConnections 1): closing new connections until some end');
  });

  it('idleTimeoutMs 2000: a silent connection is shut down 2 to 2.5 s (virtual) after its last byte', async () => {
    let endedAt = 0;
    const r = await simulate({
      plugin: ECHO,
      policy: { idleTimeoutMs: 2000 },
      seed: 1,
      scenario: function* (net: Net) {
        const c = net.connect();
        c.write('x');
        yield;
        const start = net.now();
        yield* net.until(() => c.ended, 10_000);
        endedAt = net.now() - start;
      },
    });
    expect(r.failure, r.transcript).toBeNull();
    expect(endedAt).toBeGreaterThanOrEqual(2000);
    expect(endedAt).toBeLessThanOrEqual(2500 + 10);
    expect(r.transcript).toContain('#1 plugin shutdown both');
  });

  it('an outbound connect no rule allows is denied: the host logs it, the plugin reads denied', async () => {
    const r = await simulate({
      plugin: testPlugin('connect-probe'),
      config: '127.0.0.1:9000',
      peers: ['127.0.0.1:9000'],
      seed: 1,
      scenario: function* (net: Net) {
        yield* net.until(() => net.logs.some((l) => l.message === 'probes done'), 1000);
      },
    });
    expect(r.failure, r.transcript).toBeNull();
    expect(r.transcript).toContain('log warn host: denied: connect 127.0.0.1:9000 (no outbound rule allows it)');
    expect(r.transcript).toContain('log info guest: connect 127.0.0.1:9000 -> denied');
    expect(r.transcript).not.toContain('plugin connects');
  });
});
