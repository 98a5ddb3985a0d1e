// The Node baseline for the ws broadcast benchmark: the chat room a Node
// developer would write with the `ws` package — its README's broadcast
// idiom — given the same rules as the wasmux ws plugin: no compression,
// a 1 MiB message limit, and a reader with more than 1 MiB waiting is
// closed with 1008 rather than buffered for without limit.
//
// usage: node bench/servers/node-ws-broadcast.mjs [--host 127.0.0.1] [--port 0]
// Prints "listening on HOST:PORT" once accepting; exits 0 on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { WebSocketServer, WebSocket } from 'ws';

const MAX_MESSAGE = 1 << 20;
const MAX_QUEUE = 1 << 20;

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`node-ws-broadcast: --port wants 0..65535, got '${values.port}'`);
  process.exit(2);
}

const wss = new WebSocketServer({ host: values.host, port, backlog: 4096, perMessageDeflate: false, maxPayload: MAX_MESSAGE });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client === ws || client.readyState !== WebSocket.OPEN) continue;
      if (client.bufferedAmount > MAX_QUEUE) {
        client.close(1008, 'reader too slow');
        continue;
      }
      client.send(data, { binary: isBinary });
    }
  });
  // A peer resetting mid-run is normal at benchmark teardown, not a crash.
  ws.on('error', () => ws.terminate());
});

wss.on('error', (err) => {
  console.error(`node-ws-broadcast: ${err.message}`);
  process.exit(1);
});

wss.on('listening', () => {
  const { address, port: bound } = wss.address();
  process.stdout.write(`listening on ${address}:${bound}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
