/** `wasmux run --admin`: /metrics scraped while load flows, parsed by a Prometheus text-format parser. */
import { readFileSync } from 'node:fs';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { adminUrl, echoOnce, ROOT, startRun, type Running } from '../helpers/cli.js';

let run: Running | null = null;
afterEach(async () => {
  await run?.stop();
  run = null;
});

/** Metric name -> plugin/instance -> value, from one scrape. */
async function scrape(base: string) {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusTextFormat(await res.text());
  const byName = new Map<string, { type: string; samples: Map<string, number> }>();
  for (const f of families) {
    const samples = new Map<string, number>();
    for (const s of f.metrics) {
      const l = s.labels ?? {};
      const key = [l.plugin, l.instance, l.cause].filter((x) => x !== undefined).join('/');
      samples.set(key, Number(s.value));
    }
    byName.set(f.name, { type: f.type, samples });
  }
  return byName;
}

/** The metric names the README's table documents (section "Operating wasmux"). */
function documentedMetrics(): string[] {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  const section = readme.slice(readme.indexOf('## Operating wasmux'));
  return [...new Set([...section.matchAll(/^\| `(wasmux_[a-z_]+)`/gm)].map((m) => m[1]!))];
}

describe('admin /metrics', () => {
  it('exposes every documented metric per plugin and instance; the counters grow with the load between two scrapes', async () => {
    run = await startRun(['dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--workers', '2', '--admin', '127.0.0.1:0']);
    const base = adminUrl(run);
    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThanOrEqual(15);

    const before = await scrape(base);
    for (const name of documented) {
      if (name === 'wasmux_instance_ends_total') continue; // a sample per cause: none before an instance ends
      if (name === 'wasmux_cpu_seconds_total' && process.platform !== 'linux') continue; // per-thread CPU clocks: Linux only
      expect(before.has(name), name).toBe(true);
    }
    for (const name of documented.filter(
      (n) =>
        n !== 'wasmux_instance_ends_total' &&
        (n !== 'wasmux_cpu_seconds_total' || process.platform === 'linux') &&
        !n.startsWith('wasmux_plugin_') &&
        // A histogram: the parser keeps no labels for it (test/admin/plugin-metrics.test.ts reads its series).
        n !== 'wasmux_loop_turn_seconds' &&
        !n.includes('reload') &&
        !n.includes('handover'),
    )) {
      expect([...before.get(name)!.samples.keys()].sort(), name).toEqual(['echo/0', 'echo/1']);
    }
    expect(before.get('wasmux_instance_up')!.samples.get('echo/0')).toBe(1);
    expect(before.get('wasmux_plugin_ready')!.samples.get('echo')).toBe(1);
    expect(before.get('wasmux_connections_accepted_total')!.type).toBe('COUNTER');
    expect(before.get('wasmux_connections_open')!.type).toBe('GAUGE');

    // Load: 4 clients, 25 bounded echoes each, with a scrape in the middle.
    const text = 'x'.repeat(1000);
    const clients = Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 25; i++) expect(await echoOnce(run!.port, text)).toBe(text);
    });
    const during = await scrape(base);
    await Promise.all(clients);
    const after = await scrape(base);

    const total = (m: Awaited<ReturnType<typeof scrape>>, name: string) => [...m.get(name)!.samples.values()].reduce((a, b) => a + b, 0);
    for (const name of [
      'wasmux_connections_accepted_total',
      'wasmux_received_bytes_total',
      'wasmux_sent_bytes_total',
      'wasmux_events_total',
      'wasmux_waits_total',
    ]) {
      expect(total(after, name), name).toBeGreaterThan(total(before, name));
      expect(total(after, name), name).toBeGreaterThanOrEqual(total(during, name));
    }
    expect(total(after, 'wasmux_connections_accepted_total')).toBe(100);
    expect(total(after, 'wasmux_received_bytes_total')).toBe(100_000);
    expect(total(after, 'wasmux_sent_bytes_total')).toBe(100_000);
    expect(total(after, 'wasmux_restarts_total')).toBe(0);
    expect(total(after, 'wasmux_watchdog_kills_total')).toBe(0);
    expect(total(after, 'wasmux_memory_bytes')).toBeGreaterThan(0);
    if (process.platform === 'linux') {
      expect(total(before, 'wasmux_cpu_seconds_total')).toBeGreaterThan(0);
      expect(total(after, 'wasmux_cpu_seconds_total')).toBeGreaterThan(total(before, 'wasmux_cpu_seconds_total'));
    }
  });

  it('answers HEAD without a body, 405 to other methods, 404 to unknown paths', async () => {
    run = await startRun(['dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    const base = adminUrl(run);
    const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/x`)).status).toBe(404);
  });
});
