/**
 * The same http plugin on every I/O backend this host offers here
 * (`availableBackends()`: epoll on Linux, and any other that can run on
 * this machine): a smoke test per backend — curl on a route, a chunked
 * echo, a pipelined pair and a rejected request on raw sockets.
 */
import '../stand-ins/kqueue/here.js';
import { describe, it, expect, afterEach } from 'vitest';
import { BACKEND_NAMES, availableBackends, resolveBackend } from '../../dist/host/index.js';
import { destroyClients, problems } from '../helpers/server.js';
import { RawClient, curl1, get, startHttp, type HttpServer } from '../helpers/http.js';

const backends = availableBackends();
// Why a backend cannot run here: null for those that can, else the host's own reason (resolveBackend refuses it).
function unavailable(name: string): string | null {
  if (backends.includes(name as (typeof backends)[number])) return null;
  try {
    resolveBackend(name);
    return 'not listed by availableBackends()';
  } catch (e) {
    return (e as Error).message;
  }
}
let running: HttpServer | null = null;

afterEach(async () => {
  destroyClients();
  await running?.stop();
  running = null;
});

describe('http on every available backend', () => {
  it('has at least one backend here', () => {
    expect(backends.length).toBeGreaterThan(0);
  });

  for (const backend of BACKEND_NAMES) {
    const why = unavailable(backend);
    it.skipIf(why !== null)(
      `backend ${backend}: routes, chunked echo, pipelining, a 400${why === null ? '' : ` (skipped: ${why})`}`,
      async () => {
        const http = (running = await startHttp({ backend }));
        expect(http.server.stats()).toHaveLength(1);

        const hello = await curl1([`${http.base}/`]);
        expect(hello.status).toBe(200);
        expect(hello.body.toString()).toBe('Hello, wasmux!\n');

        const echoed = await curl1(['-H', 'Transfer-Encoding: chunked', '--data-binary', `via ${backend}`, `${http.base}/echo`]);
        expect(echoed.body.toString()).toBe(`via ${backend}`);

        const c = await RawClient.open(http.port);
        c.send(get('/') + get('/missing'));
        expect((await c.response()).status).toBe(200);
        expect((await c.response()).status).toBe(404);
        c.send('GET / HTTP/1.1\r\n\r\n');
        expect((await c.response()).status).toBe(400);
        await c.waitForEnd();

        expect(problems(http.logs)).toEqual([]);
      },
    );
  }
});
