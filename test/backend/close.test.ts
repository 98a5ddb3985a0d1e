// Closing registered sockets on every backend (./checks.ts, 'close.*'):
// deregister then close, closeSocket on a registered socket, and a new socket
// that gets the closed one's number.
import { backendSuite } from './harness.js';

backendSuite('closing registered sockets', ['close.after-deregister', 'close.registered', 'close.reused-number']);
