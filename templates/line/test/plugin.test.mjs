// Tests for the plugin, through wasmux's programmatic API: serve() starts
// the built plugin (build/{{name}}.wasm, from `npm run build`) on a free
// port (":0"), the test talks to it over a real TCP socket, stop() ends it.
// Run with `npm test` (it builds first).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { serve } from 'wasmux';

// What `npm run build` wrote (asconfig.json's release target).
const PLUGIN = fileURLToPath(new URL('../build/{{name}}.wasm', import.meta.url));

let server;
before(async () => {
  server = await serve({ plugin: PLUGIN, listen: ['127.0.0.1:0'] });
  await server.ready; // every instance is listening
});
after(() => server?.stop());

/** Sends `text`, half-closes, and resolves with everything the server sent until it closed. */
async function exchange(text) {
  const socket = connect(server.addresses[0].port, '127.0.0.1');
  await once(socket, 'connect');
  socket.end(text);
  let reply = '';
  socket.setEncoding('utf8');
  for await (const chunk of socket) reply += chunk;
  return reply;
}

test('answers each command on its own line', async () => {
  assert.equal(await exchange('PING\nECHO hello world\nCOUNT\n'), 'PONG\nhello world\n3\n');
});

test('accepts \\r\\n line ends and commands in any case', async () => {
  assert.equal(await exchange('ping\r\nEcho x\r\n'), 'PONG\nx\n');
});

test('a command split across reads is answered once it is complete', async () => {
  const socket = connect(server.addresses[0].port, '127.0.0.1');
  await once(socket, 'connect');
  socket.setEncoding('utf8');
  socket.write('EC');
  await new Promise((r) => setTimeout(r, 50));
  socket.end('HO split\n');
  let reply = '';
  for await (const chunk of socket) reply += chunk;
  assert.equal(reply, 'split\n');
});

test('QUIT answers BYE and closes, ignoring what follows', async () => {
  assert.equal(await exchange('QUIT\nPING\n'), 'BYE\n');
});

test('an unknown command gets an error, and the connection stays usable', async () => {
  assert.equal(await exchange('HELLO\nPING\n'), 'ERR unknown command "HELLO"\nPONG\n');
});

test('a line that never ends is refused instead of buffered', async () => {
  assert.equal(await exchange('x'.repeat(10_000)), 'ERR line too long\n');
});
