/**
 * PROXY protocol through the command line a proxy's operator writes
 * (`wasmux run dist/plugins/http.wasm --listen 127.0.0.1:0 --proxy-protocol`),
 * on every backend that runs here (epoll, poll, kqueue through its library or
 * the stand-in, iocp under wine): a v2 header (as HAProxy's send-proxy-v2
 * writes it) and a v1 header with the request in the same write are
 * answered with the client they name; a request without a header is closed
 * unanswered. `--help` lists the flag.
 */
import { describe, it, expect, afterAll, afterEach } from 'vitest';
import { backendTargets, startServer, stopAll } from '../helpers/backends.js';
import { GET_IP, body200, destroyClients, exchange, v1, v2 } from './proxy.js';
import { runHelp } from '../../dist/host/cli/run.js';

afterEach(() => destroyClients());
afterAll(() => stopAll());

describe('wasmux run --proxy-protocol', () => {
  it('--help lists --proxy-protocol and --proxy-header-timeout', () => {
    const help = runHelp();
    expect(help).toMatch(/^ {2}--proxy-protocol +every connection starts with a PROXY protocol header/m);
    expect(help).toMatch(/^ {2}--proxy-header-timeout <ms>\s/m);
  });

  for (const target of backendTargets()) {
    it.skipIf(target.skipReason !== null)(
      `${target.label}: /ip is the client the header names; no header, no answer${target.skipReason ? ` (skipped: ${target.skipReason})` : ''}`,
      async () => {
        const proc = await startServer(target, 'dist/plugins/http.wasm', ['--proxy-protocol']);
        const r2 = await exchange(
          proc.port,
          [Buffer.concat([v2({ src: '203.0.113.7', sport: 40000, dport: 8080 }), Buffer.from(GET_IP)])],
          {
            timeoutMs: 10_000,
          },
        );
        expect(body200(r2.data)).toBe('203.0.113.7\n');
        const r1 = await exchange(proc.port, [v1(`PROXY TCP6 2001:db8::7 2001:db8::1 40000 8080\r\n${GET_IP}`)], { timeoutMs: 10_000 });
        expect(body200(r1.data)).toBe('2001:db8::7\n');
        const bare = await exchange(proc.port, [GET_IP], { timeoutMs: 10_000 });
        expect(bare.ended).toBe('closed');
        expect(bare.data.length).toBe(0);
        // Still serving after the refusal.
        const again = await exchange(proc.port, [Buffer.concat([v2({ src: '198.51.100.1' }), Buffer.from(GET_IP)])], { timeoutMs: 10_000 });
        expect(body200(again.data)).toBe('198.51.100.1\n');
        const exit = await proc.stop(target.stopSignal);
        expect(exit.code === 0 || exit.signal !== null || target.name === 'iocp').toBe(true);
      },
    );
  }
});
