/**
 * PROXY protocol counters where an operator reads them: /metrics has
 * wasmux_proxy_headers_rejected_total{plugin,instance,reason}, one sample
 * per reason, which grows with each refusal; /plugins shows the policy
 * with proxyProtocol and proxyHeaderTimeoutMs; a policy file's
 * "proxyProtocol": true turns it on like the flag.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { adminUrl, startRun, type Running } from '../helpers/cli.js';
import { GET_IP, body200, destroyClients, exchange, v1, v2 } from './proxy.js';

let run: Running | null = null;
const dir = mkdtempSync(join(tmpdir(), 'wasmux-proxy-'));
afterEach(async () => {
  destroyClients();
  await run?.stop();
  run = null;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rejectedSamples(base: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^wasmux_proxy_headers_rejected_total\{([^}]*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    expect(labels.plugin).toBe('http');
    expect(labels.instance).toBe('0');
    out[labels.reason!] = Number(m[2]);
  }
  return out;
}

describe('PROXY protocol: counters and policy, as an operator sees them', () => {
  it('a policy file turns it on; /metrics counts each refusal by reason; /plugins shows the policy', async () => {
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ proxyProtocol: true, proxyHeaderTimeoutMs: 300 }));
    run = await startRun(['dist/plugins/http.wasm', '--listen', '127.0.0.1:0', '--policy', policy, '--admin', '127.0.0.1:0']);
    const base = adminUrl(run);
    expect(await rejectedSamples(base)).toEqual({ malformed: 0, truncated: 0, timeout: 0, oversized: 0, unsupported: 0 });

    await exchange(run.port, [GET_IP]); // no header
    await exchange(run.port, [v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')]); // LF without CR
    await exchange(run.port, [v2({}).subarray(0, 10)], { end: true }); // truncated
    await exchange(run.port, [v1('PROXY ')]); // slow: the 300 ms timeout
    await exchange(run.port, [v2({ length: 60_000 }).subarray(0, 16)]); // oversized
    await exchange(run.port, [v2({ famProto: 0x31 })]); // AF_UNIX: unsupported
    expect(body200((await exchange(run.port, [Buffer.concat([v2({ src: '192.0.2.9' }), Buffer.from(GET_IP)])])).data)).toBe('192.0.2.9\n');

    expect(await rejectedSamples(base)).toEqual({ malformed: 2, truncated: 1, timeout: 1, oversized: 1, unsupported: 1 });
    const plugins = (await (await fetch(`${base}/plugins`)).json()) as { plugins: { policy: Record<string, unknown> }[] };
    expect(plugins.plugins[0]!.policy).toMatchObject({ proxyProtocol: true, proxyHeaderTimeoutMs: 300 });
  });

  it('without it, the counters stay 0 and a PROXY header is just bytes to the plugin (a 400)', async () => {
    run = await startRun(['dist/plugins/http.wasm', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0']);
    const base = adminUrl(run);
    const r = await exchange(run.port, [Buffer.concat([v1('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), Buffer.from(GET_IP)])]);
    expect(r.data.toString()).toMatch(/^HTTP\/1\.1 400 /);
    expect(await rejectedSamples(base)).toEqual({ malformed: 0, truncated: 0, timeout: 0, oversized: 0, unsupported: 0 });
  });
});
