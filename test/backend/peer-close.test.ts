// The peer going away, on every backend (./checks.ts, 'peer.*'): its
// shutdown(send) is read-closed; data and shutdown together still reach end
// of stream; its close is read-closed; both directions closed is hang-up; a
// reset is hang-up or error, once.
import { backendSuite } from './harness.js';

backendSuite('the peer going away', ['peer.shutdown', 'peer.data-then-shutdown', 'peer.close', 'peer.both-closed', 'peer.reset']);
