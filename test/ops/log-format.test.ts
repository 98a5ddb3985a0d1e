/** `wasmux run --log-format json`: every line run writes, host and guest, parses with JSON.parse. */
import { describe, expect, it } from 'vitest';
import { jsonLine } from '../../host/supervisor/logger.js';
import { echoOnce, startRun, wasmux } from '../helpers/cli.js';

interface Line {
  time: string;
  level: string;
  plugin?: string;
  instance?: number;
  origin: string;
  message: string;
  fields?: Record<string, unknown>;
}

function parseLines(text: string): Line[] {
  const lines = text.split('\n');
  expect(lines.pop()).toBe(''); // every line ends with a newline
  return lines.map((l) => JSON.parse(l) as Line);
}

describe('--log-format json', () => {
  it('writes the start line, the guest lines, the drain and the counters as one JSON object per line', async () => {
    const run = await startRun(['dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--log-format', 'json', '--admin', '127.0.0.1:0']);
    expect(await echoOnce(run.port, 'hello')).toBe('hello');
    const end = await run.stop('SIGTERM');
    expect(end.code).toBe(0);
    const out = parseLines(end.stdout);
    const err = parseLines(end.stderr);
    for (const l of [...out, ...err]) {
      expect(new Date(l.time).toISOString()).toBe(l.time);
      expect(['trace', 'debug', 'info', 'warn', 'error']).toContain(l.level);
      expect(['host', 'guest']).toContain(l.origin);
      expect(typeof l.message).toBe('string');
    }
    const start = out.find((l) => l.message.includes(' listening on '))!;
    expect(start).toMatchObject({ level: 'info', origin: 'host' });
    expect(start.message).toMatch(/^wasmux: echo listening on 127\.0\.0\.1:\d+ \(backend \w+, 1 worker, sha256 [0-9a-f]{64}\)$/);
    expect(out.some((l) => l.message.startsWith('wasmux: admin endpoint on http://127.0.0.1:'))).toBe(true);
    const guest = err.find((l) => l.origin === 'guest')!;
    expect(guest).toMatchObject({ plugin: 'echo', instance: 0, level: 'info' });
    expect(guest.message).toContain('echo listening on');
    expect(err.some((l) => l.origin === 'host' && l.message === 'wasmux: SIGTERM, draining (up to 5000 ms)')).toBe(true);
    const counters = err.find((l) => l.message.startsWith('echo[0] ended: accepted 1,'))!;
    expect(counters).toMatchObject({
      plugin: 'echo',
      instance: 0,
      origin: 'host',
      fields: { instance: 0, accepted: 1, bytesIn: 5, bytesOut: 5 },
    });
  });

  it('escapes what could end or disguise a line; JSON.parse gives the text back', () => {
    const message = 'a\nb\r\u001b[31mred\u2028\u2029\u202eevil\u0085"quoted"\\';
    const line = jsonLine({ level: 'warn', source: 'p', instance: 3, origin: 'guest', message });
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/);
    expect(JSON.parse(line)).toMatchObject({ level: 'warn', plugin: 'p', instance: 3, origin: 'guest', message });
  });

  it('refuses another format with WASMUX_ERR_BAD_ARGUMENT, exit 2', async () => {
    const r = await wasmux(['run', 'dist/plugins/echo.wasm', '--listen', '127.0.0.1:0', '--log-format', 'yaml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('WASMUX_ERR_BAD_ARGUMENT');
    expect(r.stderr).toContain('--log-format must be text or json');
  });
});
