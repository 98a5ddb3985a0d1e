/**
 * Plugin-defined metrics (wit/metrics.wit) on the admin endpoint: the http,
 * resp and ws plugins under real traffic (HTTP requests, RESP commands,
 * WebSocket messages), /metrics scraped and parsed by a Prometheus
 * text-format parser. Each plugin's metrics are there as
 * `<plugin>_<name>` with plugin and instance labels and move with the
 * traffic; the host's wasmux_loop_turn_seconds is a histogram whose count
 * grows.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { afterEach, describe, expect, it } from 'vitest';
import { type AdminServer, serveAdmin } from '../../dist/host/index.js';
import { type HttpServer, startHttp } from '../helpers/http.js';
import { command, exchange, type RespServer, startResp } from '../helpers/resp.js';
import { closeWsClients, nextMessages, openClient, startWs, type WsServer } from '../helpers/ws.js';

let admin: AdminServer | null = null;
let http: HttpServer | null = null;
let resp: RespServer | null = null;
let ws: WsServer | null = null;
afterEach(async () => {
  closeWsClients();
  await admin?.close();
  await Promise.all([http?.stop(), resp?.stop(), ws?.stop()]);
  admin = http = resp = ws = null;
});

type Families = ReturnType<typeof parsePrometheusTextFormat> & { text: string };

async function scrape(port: number): Promise<Families> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return Object.assign(parsePrometheusTextFormat(text), { text });
}

/** The sum of a family's samples whose labels include `labels`. */
function total(fams: Families, name: string, labels: Record<string, string> = {}): number {
  const f = fams.find((x) => x.name === name);
  if (!f) return Number.NaN;
  return f.metrics.filter((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v)).reduce((n, s) => n + Number(s.value), 0);
}

/**
 * wasmux_loop_turn_seconds' count for `plugin`, read from the text: the
 * parser keeps a histogram's buckets but drops its labels, sum and count
 * when it has labels. Checks on the way that each series' buckets are
 * cumulative and end in +Inf = count.
 */
function turns(fams: Families, plugin: string): number {
  let n = 0;
  for (const instance of ['0', '1']) {
    const labels = `plugin="${plugin}",instance="${instance}"`;
    const count = new RegExp(`^wasmux_loop_turn_seconds_count\\{${labels}\\} (\\S+)$`, 'm').exec(fams.text);
    if (!count) continue;
    const buckets = [...fams.text.matchAll(new RegExp(`^wasmux_loop_turn_seconds_bucket\\{${labels},le="([^"]+)"\\} (\\S+)$`, 'gm'))];
    expect(buckets.length).toBe(11);
    const values = buckets.map((b) => Number(b[2]));
    expect(values).toEqual([...values].sort((a, b) => a - b));
    expect(buckets.at(-1)![1]).toBe('+Inf');
    expect(values.at(-1)).toBe(Number(count[1]));
    n += Number(count[1]);
  }
  return n;
}

describe('plugin-defined metrics on /metrics', () => {
  it('export the http, resp and ws plugins’ own counters under their names, moving with real traffic', async () => {
    [http, resp, ws] = await Promise.all([startHttp({ workers: 2 }), startResp(), startWs()]);
    admin = await serveAdmin({ host: '127.0.0.1', port: 0, servers: () => [http!.server, resp!.server, ws!.server], expected: 3 });

    const before = await scrape(admin.port);
    // Defined at start: present before any traffic, at 0.
    expect(total(before, 'http_requests_total', { class: '2xx' })).toBe(0);
    expect(total(before, 'resp_commands_total', { command: 'set' })).toBe(0);
    expect(total(before, 'ws_messages_total')).toBe(0);
    const http2xx = before.find((f) => f.name === 'http_requests_total')!;
    expect(http2xx.type).toBe('COUNTER');
    // One series per instance and class, with plugin and instance added to the plugin's label.
    expect(new Set(http2xx.metrics.map((s) => `${s.labels!.plugin}/${s.labels!.instance}/${s.labels!.class}`))).toEqual(
      new Set(['0', '1'].flatMap((i) => ['2xx', '3xx', '4xx', '5xx'].map((c) => `http/${i}/${c}`))),
    );
    const loopType = before.find((f) => f.name === 'wasmux_loop_turn_seconds')!.type;
    expect(loopType).toBe('HISTOGRAM');

    // HTTP: 12 answered 200, 3 answered 404.
    for (let i = 0; i < 12; i++) expect((await fetch(`${http.base}/`)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await fetch(`${http.base}/nope`)).status).toBe(404);
    // RESP: SET, then GET twice, then an unknown command (not counted).
    const replies = await exchange(
      resp.port,
      Buffer.concat([command('SET', 'k', 'v'), command('GET', 'k'), command('GET', 'k'), command('NOPE')]),
      4,
    );
    expect(replies.slice(0, 3)).toEqual(['+OK\r\n', '$1\r\nv\r\n', '$1\r\nv\r\n']);
    // WebSocket: three members, 5 messages from the first, each delivered to the two others.
    const members = await Promise.all([openClient(ws.url), openClient(ws.url), openClient(ws.url)]);
    const got = [nextMessages(members[1]!, 5), nextMessages(members[2]!, 5)];
    for (let i = 0; i < 5; i++) members[0]!.send(`m${i}`);
    await Promise.all(got);

    // The updates reach the host before each wait: the instances wait again right after answering.
    let after = await scrape(admin.port);
    for (let i = 0; i < 50 && total(after, 'ws_messages_delivered_total') < 10; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await scrape(admin.port);
    }
    expect(total(after, 'http_requests_total', { class: '2xx' })).toBe(12);
    expect(total(after, 'http_requests_total', { class: '4xx' })).toBe(3);
    expect(total(after, 'http_requests_total', { class: '5xx' })).toBe(0);
    expect(total(after, 'resp_commands_total', { command: 'set' })).toBe(1);
    expect(total(after, 'resp_commands_total', { command: 'get' })).toBe(2);
    expect(total(after, 'resp_commands_total')).toBe(3);
    expect(total(after, 'ws_messages_total', { plugin: 'ws', instance: '0' })).toBe(5);
    expect(total(after, 'ws_messages_delivered_total')).toBe(10);
    for (const plugin of ['http', 'resp', 'ws']) expect(turns(after, plugin), plugin).toBeGreaterThan(turns(before, plugin));
  }, 60_000);
});
