// Stopping an instance blocked in poll.wait goes through the backend's waker
// (the eventfd on epoll): the wait ends at once, the guest unwinds, the
// thread exits by itself (no terminate()).
import { describe, it, expect } from 'vitest';
import { readdirSync } from 'node:fs';
import { serve } from '../dist/host/index.js';

const openFds = () => readdirSync('/proc/self/fd').length;

describe('the waker', () => {
  it('stops an idle instance within 100 ms, and closes every descriptor', async () => {
    const before = openFds();
    const logs: string[] = [];
    const server = await serve({
      plugin: 'dist/plugins/echo.wasm',
      listen: ['127.0.0.1:0'],
      logger: (e) => logs.push(`${e.level}: ${e.message}`),
      stopTimeoutMs: 5000,
    });
    await server.ready;
    // Let the guest settle into its wait with no timeout.
    await new Promise((r) => setTimeout(r, 100));
    // Running, and still inside its first wait (waits counts the waits that
    // returned): an idle echo's wait does not come back on its own, so the
    // stop below is what ends a wait that really blocks.
    expect(server.stats()[0]).toMatchObject({ running: true, waits: 0, events: 0 });
    const t = performance.now();
    await server.stop();
    const ms = performance.now() - t;
    expect(ms).toBeLessThan(100);
    expect(server.exitReasons()).toEqual(['stopped']);
    // A thread ended by terminate() would have logged a warning.
    expect(logs.filter((l) => l.startsWith('warn'))).toEqual([]);
    expect(openFds()).toBe(before);
  });

  it('stops four instances at once within 100 ms', async () => {
    const server = await serve({ plugin: 'dist/plugins/echo.wasm', listen: ['127.0.0.1:0'], workers: 4, logger: () => {} });
    await server.ready;
    await new Promise((r) => setTimeout(r, 100));
    const t = performance.now();
    await server.stop();
    expect(performance.now() - t).toBeLessThan(100);
    expect(server.exitReasons()).toEqual(['stopped', 'stopped', 'stopped', 'stopped']);
  });
});
