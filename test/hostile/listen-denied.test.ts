// A plugin that tries to listen where its policy does not allow
// (assembly/test-plugins/listen-denied): the next port, 0.0.0.0 and [::1]
// on its port, port 0. Each attempt gets `denied`, and the host writes
// exactly one log line per attempt naming the plugin (the line's source),
// the address and the rule; the plugin keeps serving on its own address. An
// echo plugin served beside it keeps echoing.
import { describe, it, expect, afterEach } from 'vitest';
import { Neighbour, cleanUp, connect, dump, exchange, fdBaseline, host, settleFds, testPlugin } from '../helpers/hostile.js';

afterEach(cleanUp);

describe('a plugin listening outside its policy', () => {
  it('gets denied, with one log line per attempt naming plugin, address and rule, and keeps running; its neighbour keeps echoing', async () => {
    const baseline = await fdBaseline();
    const neighbour = await Neighbour.start();
    const p = await host(testPlugin('listen-denied'));
    const P = p.port;
    await p.line(/^listening on /);

    const rule = `(listen addresses are 127.0.0.1:${P})`;
    const expected = [`127.0.0.1:${P + 1}`, `0.0.0.0:${P}`, `[::1]:${P}`, '127.0.0.1:0'];
    const denials = p.lines(/^denied: /);
    expect(
      denials.map((l) => l.message),
      dump(p.logs),
    ).toEqual(expected.map((a) => `denied: listen ${a} ${rule}`));
    for (const d of denials) {
      expect(d.level).toBe('warn');
      expect(d.source).toBe('listen-denied');
      expect(d.instance).toBe(0);
    }
    // What the plugin itself saw: denied, four times.
    const seen = p.lines(/^listen \S+ -> /).map((l) => l.message.replace(/^listen \S+ -> /, ''));
    expect(seen).toEqual(['denied', 'denied', 'denied', 'denied']);

    // It keeps serving on its own address.
    const sock = await connect(P);
    const msg = Buffer.from('still listening where allowed');
    expect((await exchange(sock, msg)).equals(msg)).toBe(true);
    sock.destroy();
    expect(p.server.exitReasons()).toEqual([null]);
    expect(p.logs.filter((l) => l.level === 'error')).toEqual([]);
    expect(p.logs.filter((l) => l.level === 'warn')).toHaveLength(4);

    expect(await neighbour.finish()).toBeGreaterThan(2);
    expect(neighbour.failures).toEqual([]);
    await cleanUp();
    expect(await settleFds(baseline)).toBe(baseline);
  }, 30_000);
});
