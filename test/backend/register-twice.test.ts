// Registration errors on every backend (./checks.ts, 'register.*'): a
// second register fails with closed (backend.ts, wit/poll.wit) and leaves the
// first as it was; reregister and deregister of an unregistered socket fail
// with closed.
import { backendSuite } from './harness.js';

backendSuite('registration errors', ['register.twice', 'register.not-registered']);
