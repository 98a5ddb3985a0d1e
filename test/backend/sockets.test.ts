// The socket calls of every backend, driven directly (./checks.ts, 'sockets.*'):
// listen on port 0 and accept, the addresses both ends report, recv and send
// through absolute addresses (a short read, bytes landing exactly where asked),
// shutdown of one direction.
import { backendSuite } from './harness.js';

backendSuite('socket calls', ['sockets.addresses', 'sockets.absolute-addresses', 'sockets.shutdown']);
