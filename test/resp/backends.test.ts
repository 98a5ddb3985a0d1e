/**
 * The same resp plugin on every I/O backend this host offers here
 * (`availableBackends()`: epoll on Linux, and any other that can run on this
 * machine): a smoke test per backend — redis-cli SET and GET, a pipeline
 * with an inline command on a raw socket, a key that expires, and QUIT
 * closing the connection.
 */
import '../stand-ins/kqueue/here.js';
import { describe, it, expect, afterEach } from 'vitest';
import { BACKEND_NAMES, availableBackends, resolveBackend } from '../../dist/host/index.js';
import { RespClient, cli, command, missing, startResp, unharmed, type RespServer } from '../helpers/resp.js';
import { destroyClients, problems, sleep } from '../helpers/server.js';

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
const noCli = missing('redis-cli');
let running: RespServer | null = null;

afterEach(async () => {
  destroyClients();
  await running?.stop();
  running = null;
});

describe('resp on every available backend', () => {
  it('has at least one backend here', () => {
    expect(backends.length).toBeGreaterThan(0);
  });

  for (const backend of BACKEND_NAMES) {
    const why = unavailable(backend);
    it.skipIf(why !== null)(
      `backend ${backend}: redis-cli, a pipeline, expiry, QUIT${why === null ? '' : ` (skipped: ${why})`}`,
      async () => {
        const resp = (running = await startResp({ backend }));
        expect(resp.server.stats()).toHaveLength(1);

        if (noCli === null) {
          expect(await cli(resp.port, ['SET', 'via', backend])).toBe('OK\n');
          expect(await cli(resp.port, ['GET', 'via'])).toBe(`"${backend}"\n`);
        }

        const c = await RespClient.open(resp.port);
        c.send(
          Buffer.concat([
            command('SET', 'short', 'lived', 'PX', '100'),
            Buffer.from('INCR n\r\n'),
            command('INCRBY', 'n', '41'),
            command('GET', 'short'),
          ]),
        );
        expect(await c.replies(4)).toEqual(['+OK\r\n', ':1\r\n', ':42\r\n', '$5\r\nlived\r\n']);
        await sleep(200);
        c.send('GET short\r\nQUIT\r\nPING\r\n');
        expect(await c.replies(2)).toEqual(['$-1\r\n', '+OK\r\n']);
        expect(await c.closed()).toBe(true);

        expect(unharmed(resp)).toBe(true);
        expect(problems(resp.logs)).toEqual([]);
      },
    );
  }
});
