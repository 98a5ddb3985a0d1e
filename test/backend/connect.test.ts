// Outgoing connections on every backend (./checks.ts, 'connect.*'): a
// completed connect is reported writable; a refused one with the error bit.
import { backendSuite } from './harness.js';

backendSuite('connecting', ['connect.writable', 'connect.refused']);
