// Edge-triggered readiness on every backend (./checks.ts, 'edge.*'): one
// event per edge, none while data waits unread, a new event for the next
// arrival once drained to would-block; writable heard of once; both
// directions in one event; a listener's edges; max-events leaves the rest to
// later waits, each key once.
import { backendSuite } from './harness.js';

backendSuite('edge-triggered readiness', ['edge.readable', 'edge.writable', 'edge.both-directions', 'edge.listener', 'edge.max-events']);
