/**
 * The ws plugin's limits come from ctx.config ("key=value" pairs): a typo or
 * a value out of range stops the plugin at start with a message naming the
 * key (never a silent default), and the limits given are the ones enforced.
 */
import { describe, it, expect, afterEach } from 'vitest';
import { serve, type LogEntry } from '../../dist/host/index.js';
import { HOST } from '../helpers/server.js';
import { startWs, closeWsClients, rawUpgrade, frame, WS_WASM, type WsServer } from '../helpers/ws.js';

let ws: WsServer | undefined;

afterEach(async () => {
  closeWsClients();
  await ws?.stop();
  ws = undefined;
});

async function failsToStart(config: string): Promise<string> {
  const logs: LogEntry[] = [];
  const server = await serve({ plugin: WS_WASM, listen: [`${HOST}:0`], config, logger: (e) => logs.push(e) });
  try {
    // run() returns the message; the host may retry before giving up (its policy, not the plugin's).
    await expect(server.ready).rejects.toMatchObject({ code: expect.stringMatching(/^WASMUX_ERR_(PLUGIN_FAILED|CRASH_LOOP)$/) });
  } finally {
    await server.stop();
  }
  return logs.map((e) => e.message).join('\n');
}

describe('ws config', () => {
  it('refuses an unknown key, a value out of range or not a number, an item without "=" — naming each', async () => {
    // Started side by side: each refusal waits out the host's retries.
    const cases: [config: string, message: string][] = [
      ['maxMesage=100', "unknown key 'maxMesage'"],
      ['maxQueue=10', 'maxQueue is out of range'],
      ['closeTimeoutMs=soon', 'closeTimeoutMs is out of range'],
      ['maxMessage', "expected key=value, got 'maxMessage'"],
    ];
    const logs = await Promise.all(cases.map(([config]) => failsToStart(config)));
    cases.forEach(([, message], i) => expect(logs[i]).toContain(message));
  });

  it('enforces the limits it is given (commas or spaces between them)', async () => {
    ws = await startWs({ config: 'maxMessage=1000, closeTimeoutMs=200  maxRequest=1024' });
    const ok = await rawUpgrade(ws.port);
    ok.sock.write(frame(2, Buffer.alloc(1001)));
    expect((await ok.frames.closeFrame()).code).toBe(1009);
    expect(ws.logs.some((e) => e.message.includes('maxMessage 1000'))).toBe(true);
  });
});
