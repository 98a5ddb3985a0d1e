// Stale keys on every backend (./checks.ts, 'stale.*'): after reregister
// with a new key nothing comes under the old one (readiness pending at the
// change included); after deregister nothing comes at all.
import { backendSuite } from './harness.js';

backendSuite('stale keys', ['stale.reregister', 'stale.pending', 'stale.deregister']);
