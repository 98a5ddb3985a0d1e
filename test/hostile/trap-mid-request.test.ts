// A plugin that traps (`unreachable`) in the middle of a request
// (assembly/test-plugins/trap-mid-request: it answers lines, and traps on
// the line "trap"). The host logs the trap once, closes the dead instance's
// connections (its clients see them end, including one mid-request on
// another connection), restarts it, and the new instance answers again. An
// echo plugin served beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import {
  Neighbour,
  cleanUp,
  connect,
  dump,
  endOf,
  fdBaseline,
  host,
  readUntil,
  settleFds,
  testPlugin,
  waitFor,
} from '../helpers/hostile.js';

afterEach(cleanUp);

const ROUNDS = 3;
const TRAPPED = /^trapped: unreachable \(linear memory [\d.]+ MiB of 64 MiB allowed\)$/;

describe('a plugin trapping mid-request', () => {
  it(`is logged once per trap, has its connections closed, and is restarted (${ROUNDS} times); its neighbour keeps echoing`, async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const p = await host(testPlugin('trap-mid-request'));
    const latencies: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const client = await connect(p.port);
      client.write(`hello ${round}\n`);
      expect(await readUntil(client, /\n/)).toBe(`hello ${round}\n`);
      // Another client in the middle of a request of its own.
      const bystander = await connect(p.port);
      bystander.write('half a requ');
      expect(await waitFor(() => p.server.stats()[0]!.open === 2, 5000)).toBe(true);

      const t = performance.now();
      client.write('trap\n');
      const ends = await Promise.all([endOf(client), endOf(bystander)]);
      const trapped = await p.line(/^trapped: /, round, 5000);
      expect(trapped.message).toMatch(TRAPPED);
      expect(trapped.level).toBe('error');
      latencies.push(Math.max(...ends));
      await p.line(/^listening on /, round + 1, 10_000);
      expect(performance.now() - t).toBeLessThan(5000);
    }
    console.log(
      `trap-mid-request: clients saw their connections end ${latencies.map((x) => x.toFixed(0)).join(', ')} ms after the trapping request`,
    );
    // The last incarnation answers normally.
    const again = await connect(p.port);
    again.write('still here\n');
    expect(await readUntil(again, /\n/)).toBe('still here\n');
    again.destroy();

    expect(p.count(/^trapped: /), dump(p.logs)).toBe(ROUNDS);
    expect(p.count(/^trapping mid-request$/)).toBe(ROUNDS);
    expect(
      p.logs.filter((l) => l.level === 'error'),
      dump(p.logs),
    ).toHaveLength(ROUNDS);
    const st = p.server.stats()[0]!;
    expect(st.ends).toEqual({ trapped: ROUNDS });
    expect(st.restarts).toBe(ROUNDS);
    expect(p.server.failed).toBeNull();

    expect(await neighbour.finish()).toBeGreaterThan(10);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
