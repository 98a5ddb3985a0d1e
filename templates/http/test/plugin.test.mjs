// Tests for the plugin, through wasmux's programmatic API: serve() starts
// the built plugin (build/{{name}}.wasm, from `npm run build`) on a free
// port (":0"), the tests send it real HTTP requests, stop() ends it.
// Run with `npm test` (it builds first).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { serve } from 'wasmux';

// What `npm run build` wrote (asconfig.json's release target).
const PLUGIN = fileURLToPath(new URL('../build/{{name}}.wasm', import.meta.url));

let server;
let base;
before(async () => {
  server = await serve({ plugin: PLUGIN, listen: ['127.0.0.1:0'] });
  await server.ready; // every instance is listening
  base = `http://127.0.0.1:${server.addresses[0].port}`;
});
after(() => server?.stop());

test('GET / greets', async () => {
  const res = await fetch(`${base}/`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(await res.text(), 'Hello from {{name}}!\n');
});

test('GET /hello/<name> greets <name>', async () => {
  const res = await fetch(`${base}/hello/wasm`);
  assert.equal(await res.text(), 'Hello, wasm!\n');
});

test('POST /echo returns the body, however it was sent', async () => {
  const body = 'x'.repeat(100_000);
  const res = await fetch(`${base}/echo`, { method: 'POST', body });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), body);
  // A streamed body is sent chunked; the handler sees it whole.
  const chunked = await fetch(`${base}/echo`, {
    method: 'POST',
    body: new Blob(['a', 'b', 'c']).stream(),
    duplex: 'half',
  });
  assert.equal(await chunked.text(), 'abc');
});

test('GET /headers reads a request header', async () => {
  const res = await fetch(`${base}/headers`, { headers: { 'user-agent': 'test "agent"' } });
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.deepEqual(await res.json(), { userAgent: 'test "agent"' });
});

test('an unknown path is 404, a wrong method 405', async () => {
  assert.equal((await fetch(`${base}/nowhere`)).status, 404);
  assert.equal((await fetch(`${base}/echo`)).status, 405);
});
