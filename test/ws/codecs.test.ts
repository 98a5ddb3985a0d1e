/**
 * The SDK's generic codecs the ws plugin is built on — assembly/sdk/sha1.ts,
 * base64.ts and utf8.ts — checked against Node's own implementations
 * (crypto, Buffer, TextDecoder in fatal mode) on fixed vectors, every length
 * up to a few blocks, random data, and input cut at every possible point.
 *
 * The test compiles a small AssemblyScript module that imports those SDK
 * files (an in-memory entry file; nothing is written to disk) into a core
 * module and instantiates it here: no host, no component, just the code.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import asc from 'assemblyscript/asc';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// A virtual file next to the SDK so its imports resolve like a plugin's.
const ENTRY = 'assembly/__codecs_test_entry__.ts';
const ENTRY_SOURCE = `
import { Sha1 } from "./sdk/sha1";
import { base64EncodeInto, base64DecodeInto } from "./sdk/base64";
import { Utf8Validator, isValidUtf8 } from "./sdk/utf8";

export function alloc(n: i32): usize { return heap.alloc(<usize>max(n, 1)); }

// Hashes in pieces of \`chunk\` bytes (0: all at once).
export function sha1(ptr: usize, len: i32, chunk: i32, out: usize): void {
  const h = new Sha1();
  if (chunk <= 0) h.update(ptr, len);
  else for (let off = 0; off < len; off += chunk) h.update(ptr + <usize>off, min(chunk, len - off));
  h.finish(out);
}

export function b64enc(ptr: usize, len: i32, out: usize): i32 { return base64EncodeInto(ptr, len, out); }
export function b64dec(ptr: usize, len: i32, out: usize): i32 { return base64DecodeInto(ptr, len, out); }

export function utf8(ptr: usize, len: i32): i32 { return isValidUtf8(ptr, len) ? 1 : 0; }

// Validates in two pieces cut at \`split\`.
export function utf8Split(ptr: usize, len: i32, split: i32): i32 {
  const v = new Utf8Validator();
  if (!v.feed(ptr, split)) return 0;
  if (!v.feed(ptr + <usize>split, len - split)) return 0;
  return v.complete ? 1 : 0;
}
`;

interface Codecs {
  memory: WebAssembly.Memory;
  alloc(n: number): number;
  sha1(ptr: number, len: number, chunk: number, out: number): void;
  b64enc(ptr: number, len: number, out: number): number;
  b64dec(ptr: number, len: number, out: number): number;
  utf8(ptr: number, len: number): number;
  utf8Split(ptr: number, len: number, split: number): number;
}

let m: Codecs;

beforeAll(async () => {
  const outputs: Record<string, Uint8Array> = {};
  const stderr: string[] = [];
  const { error } = await asc.main(
    [ENTRY, '--baseDir', ROOT, '--outFile', 'out.wasm', '--runtime', 'stub', '--optimizeLevel', '2', '--noColors'],
    {
      readFile: async (name: string, baseDir: string) => {
        if (name === ENTRY) return ENTRY_SOURCE;
        try {
          return await readFile(join(baseDir, name), 'utf8');
        } catch {
          return null;
        }
      },
      writeFile: (name: string, contents: Uint8Array | string) => {
        outputs[name] = contents as Uint8Array;
      },
      stdout: { write: () => true } as never,
      stderr: {
        write: (s: string) => {
          stderr.push(String(s));
          return true;
        },
      } as never,
    },
  );
  if (error) throw new Error(`asc failed: ${stderr.join('')}`);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(outputs['out.wasm'] as Uint8Array<ArrayBuffer>), {
    env: {
      abort: () => {
        throw new Error('abort in the codec module');
      },
    },
  });
  m = instance.exports as unknown as Codecs;
}, 60_000);

/** Copies `bytes` into a fresh guest block; returns its address. */
function put(bytes: Uint8Array): number {
  const p = m.alloc(bytes.length);
  new Uint8Array(m.memory.buffer, p, bytes.length).set(bytes);
  return p;
}

function get(ptr: number, len: number): Buffer {
  return Buffer.from(new Uint8Array(m.memory.buffer, ptr, len));
}

function sha1(bytes: Uint8Array, chunk = 0): string {
  const out = m.alloc(20);
  m.sha1(put(bytes), bytes.length, chunk, out);
  return get(out, 20).toString('hex');
}

const nodeSha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

describe('sha1', () => {
  it('matches the FIPS 180 examples and the RFC 6455 handshake example', () => {
    expect(sha1(Buffer.from(''))).toBe('da39a3ee5e6b4b0d3255bfef95601890afd80709');
    expect(sha1(Buffer.from('abc'))).toBe('a9993e364706816aba3e25717850c26c9cd0d89d');
    expect(sha1(Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'))).toBe('84983e441c3bd26ebaae4aa1f95129e5e54670f1');
    const accept = Buffer.from(sha1(Buffer.from('dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11')), 'hex');
    expect(accept.toString('base64')).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });

  it('matches node:crypto for every length from 0 to 300 bytes (all padding cases)', () => {
    for (let n = 0; n <= 300; n++) {
      const data = randomBytes(n);
      expect(sha1(data), `length ${n}`).toBe(nodeSha1(data));
    }
  });

  it('gives the same digest however the input is cut into updates', () => {
    const data = randomBytes(1000);
    for (const chunk of [1, 3, 63, 64, 65, 127, 999]) expect(sha1(data, chunk), `chunk ${chunk}`).toBe(nodeSha1(data));
  });

  it('matches node:crypto on 1 MiB', () => {
    const data = randomBytes(1 << 20);
    expect(sha1(data, 4096)).toBe(nodeSha1(data));
  });
});

function b64enc(bytes: Uint8Array): string {
  const out = m.alloc(Math.ceil(bytes.length / 3) * 4);
  const n = m.b64enc(put(bytes), bytes.length, out);
  return get(out, n).toString('latin1');
}

function b64dec(text: string): Buffer | null {
  const src = Buffer.from(text, 'latin1');
  const out = m.alloc(src.length);
  const n = m.b64dec(put(src), src.length, out);
  return n < 0 ? null : get(out, n);
}

describe('base64', () => {
  it('encodes like Buffer for every length from 0 to 100 bytes', () => {
    for (let n = 0; n <= 100; n++) {
      const data = randomBytes(n);
      expect(b64enc(data), `length ${n}`).toBe(data.toString('base64'));
    }
  });

  it('decodes what it encodes (every length from 0 to 100 bytes)', () => {
    for (let n = 0; n <= 100; n++) {
      const data = randomBytes(n);
      expect(b64dec(data.toString('base64')), `length ${n}`).toEqual(data);
    }
  });

  it('rejects what is not strict base64', () => {
    for (const bad of ['A', 'AB', 'ABC', 'AB=C', 'A===', '====', 'AB CD', 'ABC\n', 'AB-_', 'AB==AB==', '=ABC', 'ABCDE===']) {
      expect(b64dec(bad), JSON.stringify(bad)).toBeNull();
    }
  });

  it('accepts non-zero spare bits in the last group (RFC 4648 3.5 leaves it to the decoder)', () => {
    expect(b64dec('QR==')).toEqual(Buffer.from('A'));
    expect(b64dec('QUJ=')).toEqual(Buffer.from('AB'));
  });
});

const fatal = new TextDecoder('utf-8', { fatal: true });
function nodeValid(b: Uint8Array): boolean {
  try {
    fatal.decode(b);
    return true;
  } catch {
    return false;
  }
}

function utf8(bytes: Uint8Array): boolean {
  return m.utf8(put(bytes), bytes.length) === 1;
}

describe('utf8', () => {
  const valid = [
    '',
    'hello',
    'κόσμε',
    '日本語テキスト',
    '😀 emoji 🎉',
    '\u0000',
    '\u007f',
    '\u0080',
    '\u07ff',
    '\u0800',
    '\uffff',
    '\u{10000}',
    '\u{10ffff}',
    'mixed ascii and ünïcödé, long enough to take the eight-byte fast path',
  ];
  const invalid: [string, number[]][] = [
    ['lone continuation', [0x80]],
    ['overlong 2-byte (C0)', [0xc0, 0xaf]],
    ['overlong 2-byte (C1)', [0xc1, 0xbf]],
    ['overlong 3-byte', [0xe0, 0x80, 0xaf]],
    ['overlong 4-byte', [0xf0, 0x80, 0x80, 0xaf]],
    ['surrogate D800', [0xed, 0xa0, 0x80]],
    ['surrogate DFFF', [0xed, 0xbf, 0xbf]],
    ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['F5 lead', [0xf5, 0x80, 0x80, 0x80]],
    ['FF byte', [0xff]],
    ['truncated 2-byte', [0xc3]],
    ['truncated 3-byte', [0xe2, 0x82]],
    ['truncated 4-byte', [0xf0, 0x9f, 0x98]],
    ['ASCII then a bad byte after 8-byte run', [...Buffer.from('abcdefghijklmnop'), 0xfe]],
    ['missing continuation', [0xe2, 0x28, 0xa1]],
  ];

  it.each(valid)('accepts %j', (s) => {
    expect(utf8(Buffer.from(s, 'utf8'))).toBe(true);
  });

  it.each(invalid)('rejects %s', (_name, bytes) => {
    expect(utf8(Uint8Array.from(bytes))).toBe(false);
  });

  it('agrees with TextDecoder (fatal) on 20,000 random byte strings biased towards multi-byte forms', () => {
    const pool = [
      0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3,
      0xf4, 0xf5, 0xff,
    ];
    for (let i = 0; i < 20_000; i++) {
      const n = 1 + (i % 12);
      const b = Uint8Array.from({ length: n }, () => pool[Math.floor(Math.random() * pool.length)]!);
      expect(utf8(b), Buffer.from(b).toString('hex')).toBe(nodeValid(b));
    }
  });

  it('gives the same answer when the text is cut in two at every position (a character split across fragments)', () => {
    const samples = [...valid.map((s) => Buffer.from(s, 'utf8')), ...invalid.map(([, b]) => Buffer.from(b))];
    for (const b of samples) {
      const p = put(b);
      for (let split = 0; split <= b.length; split++) {
        expect(m.utf8Split(p, b.length, split) === 1, `${b.toString('hex')} cut at ${split}`).toBe(nodeValid(b));
      }
    }
  });
});
