// A tuned Node baseline for the ws broadcast benchmark: the same room as
// node-ws-broadcast.mjs, but sending the way the wasmux ws plugin does —
// each message is framed once (ws's own Sender.frame), and each client's
// frames of one event-loop turn leave in a single write. It shows how much
// of the gap to the idiomatic baseline is that batching rather than the
// runtime. Not what the ws README teaches: it writes to the client's socket
// (`ws._socket`, not public API), beside ws's own sender, which is safe here
// only because compression is off (ws then never holds frames back).
//
// usage: node bench/servers/node-ws-batched.mjs [--host 127.0.0.1] [--port 0]
// Prints "listening on HOST:PORT" once accepting; exits 0 on SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { Sender, WebSocketServer, WebSocket } from 'ws';

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
  console.error(`node-ws-batched: --port wants 0..65535, got '${values.port}'`);
  process.exit(2);
}

const wss = new WebSocketServer({ host: values.host, port, backlog: 4096, perMessageDeflate: false, maxPayload: MAX_MESSAGE });

// Frames waiting for the end of this turn, per client.
const pending = new Map();
let flushScheduled = false;

function flush() {
  flushScheduled = false;
  for (const [client, frames] of pending) {
    if (client.readyState === WebSocket.OPEN) client._socket.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
  }
  pending.clear();
}

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    const frame = Buffer.concat(
      Sender.frame(data, {
        fin: true,
        rsv1: false,
        opcode: isBinary ? 2 : 1,
        mask: false,
        readOnly: false,
      }),
    );
    for (const client of wss.clients) {
      if (client === ws || client.readyState !== WebSocket.OPEN) continue;
      if (client._socket.writableLength > MAX_QUEUE) {
        pending.delete(client);
        client.close(1008, 'reader too slow');
        continue;
      }
      let frames = pending.get(client);
      if (!frames) pending.set(client, (frames = []));
      frames.push(frame);
    }
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flush);
    }
  });
  ws.on('error', () => ws.terminate());
});

wss.on('error', (err) => {
  console.error(`node-ws-batched: ${err.message}`);
  process.exit(1);
});

wss.on('listening', () => {
  const { address, port: bound } = wss.address();
  process.stdout.write(`listening on ${address}:${bound}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
