/**
 * A corpus of malformed requests sent on raw sockets to the http plugin:
 * each must get the right status (and the reason the parser names, so the
 * intended rule is the one that fired), `Connection: close`, then the
 * server's end of stream with nothing after the response — whatever the
 * client sent after it. Then a corpus of unusual but valid requests that
 * must be served on a connection that stays open.
 *
 * Every exchange is bounded (3 s per response, 3 s for the close), and the
 * server runs with idle-ms=1000, so a request the parser wrongly waits on
 * shows up as a 408 instead of a hang.
 *
 * Line-ending policy under test: CRLF only; a bare LF or bare CR in the
 * head is 400 (see assembly/sdk/http/parser.ts).
 */
import { describe, it, expect, beforeAll, afterAll, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { destroyClients, problems, sleep } from '../helpers/server.js';
import { RawClient, get, settledStats, startHttp, type HttpServer } from '../helpers/http.js';

let http: HttpServer;

beforeAll(async () => {
  http = await startHttp({ config: 'idle-ms=1000' });
});

afterEach(() => {
  destroyClients();
});

afterAll(async () => {
  await http?.stop();
});

const H = 'Host: t\r\n';
const post = (headers: string, body = '') => `POST /echo HTTP/1.1\r\n${H}${headers}\r\n${body}`;
const chunked = (body: string) => post('Transfer-Encoding: chunked\r\n', body);
const KiB = 1024;
const MiB = 1024 * KiB;

// The start of a TLS 1.2 ClientHello: record header, handshake header, version, then
// 32 "random" bytes (fixed here, without CR or LF, so the first-byte check is what fires).
const CLIENT_HELLO = Buffer.from([
  0x16,
  0x03,
  0x01,
  0x02,
  0x00,
  0x01,
  0x00,
  0x01,
  0xfc,
  0x03,
  0x03,
  ...Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff).map((b) => (b === 0x0a || b === 0x0d ? 0x20 : b)),
]);

type Case = [name: string, status: number, reason: RegExp, request: string | Buffer];

const MALFORMED: Case[] = [
  // Line endings: CRLF only.
  ['bare LF line endings throughout', 400, /bare LF/, 'GET / HTTP/1.1\nHost: t\n\n'],
  ['a bare LF ending one header line', 400, /bare LF/, 'GET / HTTP/1.1\r\nHost: t\n\r\n'],
  ['a bare LF as the final empty line', 400, /bare LF/, 'GET / HTTP/1.1\r\nHost: t\r\n\n'],
  ['a bare LF before the request line', 400, /bare LF/, `\n${get()}`],
  ['a bare CR ending the request line', 400, /bare CR/, 'GET / HTTP/1.1\rHost: t\r\n\r\n'],
  ['a bare CR inside a header value', 400, /bare CR/, `GET / HTTP/1.1\r\n${H}X: a\rb\r\n\r\n`],
  ['CR CR LF', 400, /bare CR/, `GET / HTTP/1.1\r\r\n${H}\r\n`],
  ['an empty-line flood before the request line', 400, /too many empty lines/, `${'\r\n'.repeat(100)}${get()}`],

  // The request line.
  ['an invalid character in the method', 400, /invalid character in method/, `G@T / HTTP/1.1\r\n${H}\r\n`],
  ['a NUL byte in the method', 400, /invalid character in method/, `GE\0T / HTTP/1.1\r\n${H}\r\n`],
  ['a tab between method and target', 400, /invalid character in method/, `GET\t/ HTTP/1.1\r\n${H}\r\n`],
  ['a method longer than 32 bytes', 400, /method too long/, `${'A'.repeat(40)} / HTTP/1.1\r\n${H}\r\n`],
  ['two spaces after the method', 400, /empty request target/, `GET  / HTTP/1.1\r\n${H}\r\n`],
  ['a space after the version', 400, /malformed HTTP version/, `GET / HTTP/1.1 \r\n${H}\r\n`],
  ['a space inside the target', 400, /malformed HTTP version/, `GET /a b HTTP/1.1\r\n${H}\r\n`],
  ['a NUL byte in the target', 400, /NUL byte in request target/, `GET /a\0b HTTP/1.1\r\n${H}\r\n`],
  ['a non-ASCII byte in the target', 400, /invalid character in request target/, `GET /caf\xe9 HTTP/1.1\r\n${H}\r\n`],
  ['a target that is neither a path nor a URI', 400, /not a path/, `GET foo HTTP/1.1\r\n${H}\r\n`],
  ['an absolute URI with an empty authority', 400, /empty authority/, `GET http:///x HTTP/1.1\r\n${H}\r\n`],
  ['the asterisk-form with GET', 400, /asterisk-form/, `GET * HTTP/1.1\r\n${H}\r\n`],
  ['no version (an HTTP/0.9 request)', 400, /no HTTP version/, 'GET /\r\n\r\n'],
  ['a lower-case protocol name', 400, /malformed HTTP version/, `GET / http/1.1\r\n${H}\r\n`],
  ['a version without minor', 400, /malformed HTTP version/, `GET / HTTP/1\r\n${H}\r\n`],
  ['a two-digit minor version', 400, /malformed HTTP version/, `GET / HTTP/1.10\r\n${H}\r\n`],
  ['HTTP/2.0', 505, /only HTTP\/1\.x/, `GET / HTTP/2.0\r\n${H}\r\n`],
  ['HTTP/3.0', 505, /only HTTP\/1\.x/, `GET / HTTP/3.0\r\n${H}\r\n`],
  ['HTTP/0.9 written with a version', 505, /only HTTP\/1\.x/, `GET / HTTP/0.9\r\n${H}\r\n`],
  ['the HTTP/2 connection preface', 505, /only HTTP\/1\.x/, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
  ['a 3 KiB target (limit 2 KiB)', 414, /longer than max-uri/, `GET /${'a'.repeat(3 * KiB)} HTTP/1.1\r\n${H}\r\n`],
  ['a 5 KiB target that never ends (refused before its line does)', 414, /longer than max-uri/, `GET /${'a'.repeat(5 * KiB)}`],
  ['a TLS ClientHello (answered on its first byte)', 400, /invalid character in method/, CLIENT_HELLO],
  ['text that is not HTTP', 400, /no HTTP version/, 'hello world\r\n\r\n'],
  ['binary garbage', 400, /invalid character in method/, Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x0d, 0x0a, 0x0d, 0x0a])],

  // Header lines.
  ['a header line without colon', 400, /without colon/, `GET / HTTP/1.1\r\n${H}X-No-Colon\r\n\r\n`],
  ['a space before the colon', 400, /whitespace before colon/, 'GET / HTTP/1.1\r\nHost : t\r\n\r\n'],
  ['a tab before the colon', 400, /whitespace before colon/, `GET / HTTP/1.1\r\n${H}X\t: v\r\n\r\n`],
  ['an empty header name', 400, /empty header name/, `GET / HTTP/1.1\r\n${H}: v\r\n\r\n`],
  ['a parenthesis in a header name', 400, /invalid character in header name/, `GET / HTTP/1.1\r\n${H}X(y): z\r\n\r\n`],
  ['a NUL byte in a header value', 400, /NUL byte in header value/, `GET / HTTP/1.1\r\n${H}X: a\0b\r\n\r\n`],
  ['a control byte in a header value', 400, /invalid character in header value/, `GET / HTTP/1.1\r\n${H}X: a\x01b\r\n\r\n`],
  ['DEL in a header value', 400, /invalid character in header value/, `GET / HTTP/1.1\r\n${H}X: a\x7fb\r\n\r\n`],
  ['obsolete line folding', 400, /obsolete line folding/, `GET / HTTP/1.1\r\n${H}X: a\r\n b\r\n\r\n`],
  ['a folded first header line', 400, /obsolete line folding/, 'GET / HTTP/1.1\r\n Host: t\r\n\r\n'],
  ['HTTP/1.1 without Host', 400, /missing Host/, 'GET / HTTP/1.1\r\n\r\n'],
  ['two Host headers', 400, /more than one Host/, `GET / HTTP/1.1\r\n${H}Host: u\r\n\r\n`],
  ['a space inside the Host value', 400, /invalid Host/, 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n'],
  ['a slash inside the Host value', 400, /invalid Host/, 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n'],
  ['a 9 KiB header (limit 8 KiB)', 431, /header section larger/, `GET / HTTP/1.1\r\n${H}X: ${'b'.repeat(9 * KiB)}\r\n\r\n`],
  [
    '200 headers adding up to 10 KiB',
    431,
    /header section larger/,
    `GET / HTTP/1.1\r\n${H}${'X-Filler: 0123456789012345678901234567890123456789\r\n'.repeat(200)}\r\n`,
  ],
  ['a header that never ends (refused at 8 KiB)', 431, /header section larger/, `GET / HTTP/1.1\r\n${H}X: ${'b'.repeat(9 * KiB)}`],

  // Framing.
  ['two equal Content-Lengths', 400, /more than one Content-Length/, post('Content-Length: 3\r\nContent-Length: 3\r\n', 'abc')],
  ['two conflicting Content-Lengths', 400, /more than one Content-Length/, post('Content-Length: 3\r\nContent-Length: 4\r\n', 'abcd')],
  ['a Content-Length list "3, 3"', 400, /invalid Content-Length/, post('Content-Length: 3, 3\r\n', 'abc')],
  ['a negative Content-Length', 400, /invalid Content-Length/, post('Content-Length: -1\r\n')],
  ['a Content-Length with a plus sign', 400, /invalid Content-Length/, post('Content-Length: +3\r\n', 'abc')],
  ['an empty Content-Length', 400, /invalid Content-Length/, post('Content-Length:\r\n')],
  ['a hexadecimal Content-Length', 400, /invalid Content-Length/, post('Content-Length: 0x10\r\n')],
  ['a space inside the Content-Length', 400, /invalid Content-Length/, post('Content-Length: 1 0\r\n')],
  ['a huge Content-Length (23 digits)', 413, /larger than max-body/, post('Content-Length: 99999999999999999999999\r\n')],
  ['a Content-Length of 1 MiB + 1', 413, /larger than max-body/, post(`Content-Length: ${MiB + 1}\r\n`)],
  [
    'a 2 MiB body sent in full after its head (read and dropped, no reset)',
    413,
    /larger than max-body/,
    post(`Content-Length: ${2 * MiB}\r\n`, 'x'.repeat(2 * MiB)),
  ],
  [
    'Content-Length and Transfer-Encoding together',
    400,
    /both Content-Length and Transfer-Encoding/,
    post('Content-Length: 3\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
  ],
  ['Transfer-Encoding gzip (chunked not last)', 400, /chunked is not the final/, post('Transfer-Encoding: gzip\r\n', 'abc')],
  ['Transfer-Encoding chunked, gzip', 400, /chunked is not the final/, post('Transfer-Encoding: chunked, gzip\r\n', '0\r\n\r\n')],
  ['Transfer-Encoding chunked, chunked', 400, /more than once/, post('Transfer-Encoding: chunked, chunked\r\n', '0\r\n\r\n')],
  [
    'chunked in two Transfer-Encoding lines',
    400,
    /more than once/,
    post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', '0\r\n\r\n'),
  ],
  ['an empty Transfer-Encoding', 400, /empty Transfer-Encoding/, post('Transfer-Encoding:\r\n')],
  ['Transfer-Encoding gzip, chunked (not supported)', 501, /other than chunked/, post('Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n')],
  ['Transfer-Encoding in HTTP/1.0', 400, /HTTP\/1\.0/, 'POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['an unknown expectation', 417, /100-continue/, post('Expect: 200-ok\r\nContent-Length: 1\r\n', 'x')],

  // Chunked bodies.
  ['a chunk size that is not hexadecimal', 400, /invalid chunk size/, chunked('zz\r\nabc\r\n0\r\n\r\n')],
  ['a negative chunk size', 400, /invalid chunk size/, chunked('-5\r\nhello\r\n0\r\n\r\n')],
  ['an empty chunk-size line', 400, /invalid chunk size/, chunked('\r\nhello\r\n0\r\n\r\n')],
  ['a chunk size with 0x', 400, /invalid chunk size/, chunked('0x5\r\nhello\r\n0\r\n\r\n')],
  ['a chunk size with a space after it', 400, /invalid chunk size/, chunked('5 \r\nhello\r\n0\r\n\r\n')],
  ['a chunk size of 2^64 (wraps to 0 in a 64-bit parser)', 400, /chunk size overflow/, chunked('10000000000000000\r\nhello\r\n0\r\n\r\n')],
  ['a chunk size of 17 hex digits', 400, /chunk size overflow/, chunked('fffffffffffffffff\r\nhello\r\n0\r\n\r\n')],
  ['a chunk size of 2 MiB (over the limit, valid otherwise)', 413, /larger than max-body/, chunked('200000\r\nhello')],
  [
    'chunks adding up to over 1 MiB',
    413,
    /larger than max-body/,
    chunked(`96000\r\n${'a'.repeat(0x96000)}\r\n96000\r\n${'b'.repeat(0x96000)}\r\n0\r\n\r\n`),
  ],
  ['chunk data longer than its size', 400, /not followed by CRLF/, chunked('5\r\nhelloXX\r\n0\r\n\r\n')],
  ['chunk data shorter than its size', 400, /not followed by CRLF/, chunked('5\r\nhel\r\n0\r\n\r\n')],
  ['a bare LF after a chunk size', 400, /bare LF/, chunked('5\nhello\r\n0\r\n\r\n')],
  ['a control byte in a chunk extension', 400, /invalid chunk extension/, chunked('5;a=\x01\r\nhello\r\n0\r\n\r\n')],
  ['a chunk extension with no name (2;)', 400, /invalid chunk extension/, chunked('2;\r\nhi\r\n0\r\n\r\n')],
  ['a chunk extension with no name after another (2;a;)', 400, /invalid chunk extension/, chunked('2;a;\r\nhi\r\n0\r\n\r\n')],
  ['a chunk extension name that is not a token (2;a b)', 400, /invalid chunk extension/, chunked('2;a b\r\nhi\r\n0\r\n\r\n')],
  ['a chunk extension with = and no value', 400, /invalid chunk extension/, chunked('2;a=\r\nhi\r\n0\r\n\r\n')],
  ['a chunk extension value with an unclosed quote', 400, /invalid chunk extension/, chunked('2;a="b\r\nhi\r\n0\r\n\r\n')],
  ['a trailer line without colon', 400, /without colon/, chunked('5\r\nhello\r\n0\r\nbad trailer\r\n\r\n')],
  ['a folded trailer line', 400, /obsolete line folding/, chunked('5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n')],
  ['a 9 KiB trailer section', 431, /trailer section larger/, chunked(`5\r\nhello\r\n0\r\nX: ${'t'.repeat(9 * KiB)}\r\n\r\n`)],
];

describe('http: malformed requests (raw sockets)', () => {
  it('has a corpus of at least 30 cases', () => {
    expect(MALFORMED.length).toBeGreaterThanOrEqual(30);
  });

  it.each(MALFORMED)('%s → %i, then the connection closes', async (_name, status, reason, request) => {
    const c = await RawClient.open(http.port);
    c.send(request);
    const r = await c.response({ timeoutMs: 3_000 });
    expect(r.status).toBe(status);
    expect(r.body.toString()).toMatch(reason);
    expect(r.headers['connection']).toBe('close');
    await c.waitForEnd(3_000);
    // Nothing after the error response (no answer to whatever followed it), and no reset.
    expect(c.received.length).toBe(0);
    expect(c.error).toBeNull();
  });

  it('answers a malformed request followed by a valid one in the same write only once, then closes', async () => {
    const c = await RawClient.open(http.port);
    c.send(`GET / HTTP/1.1\r\nHost : t\r\n\r\n${get()}`);
    const r = await c.response({ timeoutMs: 3_000 });
    expect(r.status).toBe(400);
    await c.waitForEnd(3_000);
    expect(c.received.length).toBe(0);
  });

  it('keeps reading (and dropping) after an error until the client closes, without a reset', async () => {
    // The client goes on sending after the 413; the server has shut its
    // side but must keep draining, or the client's writes would meet a reset.
    const c = await RawClient.open(http.port);
    c.send(post(`Content-Length: ${10 * MiB}\r\n`));
    const r = await c.response({ timeoutMs: 3_000 });
    expect(r.status).toBe(413);
    await c.waitForEnd(3_000);
    for (let i = 0; i < 10; i++) {
      c.send(randomBytes(64 * KiB));
      await sleep(10);
    }
    await sleep(100);
    expect(c.error).toBeNull();
  });
});

type Valid = [name: string, status: number, body: string | null, request: string];

const VALID: Valid[] = [
  ['up to four empty lines before the request line', 200, 'Hello, wasmux!\n', `\r\n\r\n\r\n\r\n${get()}`],
  ['header names in any case', 200, 'abc', 'POST /echo HTTP/1.1\r\nhOsT: t\r\nCONTENT-length: 3\r\n\r\nabc'],
  ['whitespace around a header value', 200, 'abc', 'POST /echo HTTP/1.1\r\nHost:t\r\nContent-Length: \t 3 \t\r\n\r\nabc'],
  ['an empty Host (allowed by RFC 9112)', 200, 'Hello, wasmux!\n', 'GET / HTTP/1.1\r\nHost:\r\n\r\n'],
  ['an IPv6 Host with a port', 200, 'Hello, wasmux!\n', 'GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n'],
  ['HTTP/1.2, served as HTTP/1.1', 200, 'Hello, wasmux!\n', 'GET / HTTP/1.2\r\nHost: t\r\n\r\n'],
  ['obs-text (bytes 0x80-0xFF) in a header value', 200, 'Hello, wasmux!\n', `GET / HTTP/1.1\r\n${H}X: caf\xe9\r\n\r\n`],
  ['an unknown header with an empty value', 200, 'Hello, wasmux!\n', `GET / HTTP/1.1\r\n${H}X-Empty:\r\n\r\n`],
  [
    'Connection with other options',
    200,
    'Hello, wasmux!\n',
    `GET / HTTP/1.1\r\n${H}Connection: Upgrade, keep-alive\r\nUpgrade: foo\r\n\r\n`,
  ],
  ['a GET with a body (read and skipped)', 200, 'Hello, wasmux!\n', `GET / HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`],
  ['Content-Length: 0 with leading zeros', 200, '', post('Content-Length: 000\r\n')],
  ['Transfer-Encoding in another case', 200, 'abc', post('Transfer-Encoding: ChUnKeD\r\n', '3\r\nabc\r\n0\r\n\r\n')],
  ['empty elements in the Transfer-Encoding list', 200, 'abc', post('Transfer-Encoding: , chunked,\r\n', '3\r\nabc\r\n0\r\n\r\n')],
  [
    'chunk extensions, upper-case hex, leading zeros and trailers',
    200,
    '0123456789abc',
    chunked('A;name=value;flag\r\n0123456789\r\n0003 ; x="y"\r\nabc\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n'),
  ],
  [
    'chunk extensions with whitespace around = and a quoted value with an escape',
    200,
    'hi',
    chunked('2 ; a = b ; c="d\\"e"\r\nhi\r\n0\r\n\r\n'),
  ],
  ['a chunked body with only the last chunk', 200, '', chunked('0\r\n\r\n')],
  ['Expect: 100-continue in another case (body sent at once)', 200, 'hi', post('Expect: 100-Continue\r\nContent-Length: 2\r\n', 'hi')],
  [
    'an HTTP/1.0 Expect is ignored',
    200,
    'hi',
    'POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi',
  ],
  [
    'an absolute-form target with port and query',
    200,
    'Hello, wasmux!\n',
    'GET https://example.com:8443?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n',
  ],
  ['an unknown method on an unknown path', 501, null, `BREW /pot HTTP/1.1\r\n${H}\r\n`],
  ['a lower-case method (methods are case-sensitive: "get" is not GET)', 501, null, `get / HTTP/1.1\r\n${H}\r\n`],
];

describe('http: unusual but valid requests keep the connection', () => {
  it.each(VALID)('%s → %i, and the next request on the connection is served', async (_name, status, body, request) => {
    const c = await RawClient.open(http.port);
    c.send(request + get('/'));
    const r = await c.response({ timeoutMs: 3_000 });
    expect(r.status).toBe(status);
    if (body !== null) expect(r.body.toString('latin1')).toBe(body);
    expect(r.headers['connection'] ?? 'keep-alive').toBe('keep-alive'); // HTTP/1.0 keep-alive is said out loud
    const next = await c.response({ timeoutMs: 3_000 });
    expect(next.status).toBe(200);
    expect(c.ended).toBe(false);
    // No 100 Continue was sent where the body came with the head.
    expect(c.received.length).toBe(0);
  });

  it('every connection is closed in the end, and nothing was logged', async () => {
    destroyClients();
    const s = await settledStats(http.port);
    expect(s.open).toBe(1); // the /stats connection
    expect(s.rejected).toBeGreaterThanOrEqual(MALFORMED.length);
    expect(problems(http.logs)).toEqual([]);
  });
});
