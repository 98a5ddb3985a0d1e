// Waking a blocked wait from another thread (BackendModule.wake with the
// backend's wakeTarget, called from a worker_threads Worker that loads the
// backend in its own thread) on every backend (./checks.ts, 'wake.*').
import { backendSuite } from './harness.js';

backendSuite('wake-up from another thread', ['wake.during-wait', 'wake.before-wait']);
