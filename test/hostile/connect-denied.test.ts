// A plugin connecting where its policy does not allow
// (assembly/test-plugins/connect-probe): with no outbound rule every connect
// gets `denied`; with a rule for one port, the next port and the same port
// over IPv6 are still denied. Each refusal: one log line naming the plugin,
// the address and the rule, and the target never sees a connection. The
// plugin keeps serving. An echo plugin served beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import net from 'node:net';
import { Neighbour, cleanUp, connect, dump, exchange, fdBaseline, host, settleFds, sleep, testPlugin } from '../helpers/hostile.js';

afterEach(cleanUp);

/** A local TCP server that counts the connections it receives. */
async function target(): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    n++;
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as net.AddressInfo).port,
    connections: () => n,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        srv.close(() => r());
      }),
  };
}

describe('a plugin connecting outside its policy', () => {
  it('gets denied with no outbound rule, and with a rule for another port or family; one log line each; its neighbour keeps echoing', async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const t = await target();
    const T = t.port;
    try {
      // No rule at all (the default).
      const a = await host(testPlugin('connect-probe'), { config: `127.0.0.1:${T}` });
      await a.line(/^probes done$/);
      expect(a.lines(/^denied: /).map((l) => l.message)).toEqual([`denied: connect 127.0.0.1:${T} (no outbound rule allows it)`]);
      expect(a.lines(/^denied: /)[0]).toMatchObject({ level: 'warn', source: 'connect-probe', instance: 0 });
      expect(a.lines(/^connect /).map((l) => l.message)).toEqual([`connect 127.0.0.1:${T} -> denied`]);

      // A rule for one port of one address: the neighbouring port and IPv6 stay denied.
      const b = await host(testPlugin('connect-probe'), {
        config: `127.0.0.1:${T + 1},[::1]:${T},127.0.0.2:${T}`,
        policy: { connect: [`127.0.0.1:${T}`] },
      });
      await b.line(/^probes done$/);
      expect(
        b.lines(/^denied: /).map((l) => l.message),
        dump(b.logs),
      ).toEqual([
        `denied: connect 127.0.0.1:${T + 1} (no outbound rule allows it)`,
        `denied: connect [::1]:${T} (no outbound rule allows it)`,
        `denied: connect 127.0.0.2:${T} (no outbound rule allows it)`,
      ]);
      expect(b.lines(/^connect /).map((l) => l.message.replace(/^connect \S+ -> /, ''))).toEqual(['denied', 'denied', 'denied']);

      // Nothing reached the target; both plugins still serve.
      await sleep(100);
      expect(t.connections()).toBe(0);
      for (const p of [a, b]) {
        const sock = await connect(p.port);
        const msg = Buffer.from('still serving');
        expect((await exchange(sock, msg)).equals(msg)).toBe(true);
        sock.destroy();
        expect(p.server.exitReasons()).toEqual([null]);
        expect(p.logs.filter((l) => l.level === 'error')).toEqual([]);
      }
    } finally {
      await t.close();
    }
    expect(await neighbour.finish()).toBeGreaterThan(2);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
