// Re-arming after would-block on every backend (./checks.ts, 'rearm.*'):
// poll(2) and IOCP re-arm a direction at drained() and only then (what
// arrived in between is reported then); epoll and kqueue need no call;
// reregister re-arms without draining.
import { backendSuite } from './harness.js';

backendSuite('re-arming after would-block', ['rearm.which', 'rearm.read', 'rearm.write', 'rearm.reregister']);
