// The Node baseline: the echo a Node developer would write with `net`, no tuning
// beyond what the C server also gets (TCP_NODELAY, a deep accept backlog), so the
// comparison measures the runtime, not the settings.
//
// usage: node bench/servers/node-net-echo.mjs [--host 127.0.0.1] [--port 0]
// Prints "listening on HOST:PORT" once accepting; exits 0 on SIGTERM/SIGINT.
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`node-net-echo: --port wants 0..65535, got '${values.port}'`);
  process.exit(2);
}

const server = net.createServer({ noDelay: true }, (socket) => {
  // Written out rather than socket.pipe(socket): pipe adds stream machinery
  // that a hand-written server would not have, and this is the baseline.
  socket.on('data', (chunk) => {
    if (!socket.write(chunk)) {
      socket.pause();
      socket.once('drain', () => socket.resume());
    }
  });
  // A peer resetting mid-run is normal at benchmark teardown, not a crash.
  socket.on('error', () => socket.destroy());
});

server.on('error', (err) => {
  console.error(`node-net-echo: ${err.message}`);
  process.exit(1);
});

server.listen({ host: values.host, port, backlog: 4096 }, () => {
  const { address, port: bound } = server.address();
  process.stdout.write(`listening on ${address}:${bound}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
