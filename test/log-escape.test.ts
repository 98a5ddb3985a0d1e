// The sink's one rule (host/supervisor/logger.ts): every line wasmux writes
// to stderr is exactly one line, whatever text it carries: control
// characters become visible escapes, everything else is left alone.
import { describe, it, expect } from 'vitest';
import { escapeControl, stderrLogger } from '../host/supervisor/logger.js';

describe('escapeControl', () => {
  it('writes newline, carriage return and tab as \\n, \\r, \\t', () => {
    expect(escapeControl('a\nb\rc\td')).toBe('a\\nb\\rc\\td');
  });

  it('writes the other C0 controls, DEL and the C1 controls as \\xNN', () => {
    expect(escapeControl('\x00\x07\x1b[2K\x1f\x7f\x80\x85\x9f')).toBe('\\x00\\x07\\x1b[2K\\x1f\\x7f\\x80\\x85\\x9f');
  });

  it('writes U+2028, U+2029 and the bidirectional controls as \\uNNNN', () => {
    expect(escapeControl('a\u2028b\u2029c\u202ad\u202ee\u2066f\u2069g')).toBe('a\\u2028b\\u2029c\\u202ad\\u202ee\\u2066f\\u2069g');
  });

  it('leaves printable text alone, non-ASCII and U+FFFD included', () => {
    const text = 'emoji 🦀🚀, ∂x/∂t, ½ ≠ 0.5, “quoted”, \ufffd, a\\nb (a backslash and n), \u00a0 (no-break space)';
    expect(escapeControl(text)).toBe(text);
  });

  it('makes one line of any string: nothing left that a terminal or a line reader takes for a break', () => {
    let all = '';
    for (let c = 0; c < 0x3000; c++) all += String.fromCharCode(c);
    const out = escapeControl(all);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
    expect(out).not.toMatch(/[\n\r\v\f\u0085\u2028\u2029\x1b]/);
  });
});

describe('stderrLogger', () => {
  it("marks the guest's lines and escapes source and message", () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((s: string) => (written.push(s), true)) as typeof process.stderr.write;
    try {
      const log = stderrLogger('info');
      log({ level: 'error', source: 'p', instance: 0, origin: 'guest', message: 'killed: x\nwasmux: error' });
      log({ level: 'error', source: 'p', instance: 0, origin: 'host', message: 'killed: x' });
      log({ level: 'debug', source: 'p', instance: 0, origin: 'host', message: 'below the level' });
    } finally {
      process.stderr.write = write;
    }
    expect(written).toEqual(['p[0] guest error: killed: x\\nwasmux: error\n', 'p[0] error: killed: x\n']);
  });
});
