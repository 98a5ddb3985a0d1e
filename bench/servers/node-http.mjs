// The Node baseline for the HTTP benchmark: the `http` server a Node developer
// would write for a fixed answer, doing what wasmux's http plugin does on `GET /`
// (same body, same Content-Type, explicit Content-Length, keep-alive), with no
// tuning beyond a deep accept backlog (as every server in the benchmark gets).
// Any other path is 404, like the plugin's.
//
// usage: node bench/servers/node-http.mjs [--host 127.0.0.1] [--port 0]
// Prints "listening on HOST:PORT" once accepting; exits 0 on SIGTERM/SIGINT.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`node-http: --port wants 0..65535, got '${values.port}'`);
  process.exit(2);
}

const BODY = Buffer.from('Hello, wasmux!\n');
const HEADERS = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': BODY.length };

const server = http.createServer((req, res) => {
  if (req.url === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, HEADERS);
    res.end(req.method === 'HEAD' ? undefined : BODY);
  } else {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 10 });
    res.end('Not Found\n');
  }
});
// Node's default keep-alive timeout is 5 s; the load keeps every connection busy.
server.on('clientError', (_err, socket) => socket.destroy());

server.on('error', (err) => {
  console.error(`node-http: ${err.message}`);
  process.exit(1);
});

server.listen({ host: values.host, port, backlog: 4096 }, () => {
  const { address, port: bound } = server.address();
  process.stdout.write(`listening on ${address}:${bound}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
