/**
 * PROXY protocol under simulation: the simulated network has no peek, so
 * a policy with proxyProtocol is refused at once with WASMUX_ERR_BAD_POLICY
 * (not silently ignored), and simulations without it run as before.
 */
import { describe, it, expect } from 'vitest';
import { simulate, type Net } from '../../dist/host/index.js';
import { ECHO } from '../sim/helpers.js';

describe('PROXY protocol under simulation', () => {
  it('proxyProtocol is refused with a clear error', async () => {
    const run = simulate({
      plugin: ECHO,
      policy: { proxyProtocol: true },
      seed: 1,
      scenario: function* (net: Net) {
        yield* net.until(() => false, 10);
      },
    });
    await expect(run).rejects.toMatchObject({
      code: 'WASMUX_ERR_BAD_POLICY',
      message: 'proxyProtocol: the sim backend cannot read PROXY protocol headers',
    });
  });
});
