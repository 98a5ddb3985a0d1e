/**
 * Imported first (for its effect) by test files that run backends in their
 * own process: on Linux, unless WASMUX_KQUEUE_LIBRARY already names a kqueue
 * library, it names the stand-in's (64-byte layout), so that the kqueue
 * backend is available to this process. Each test file runs in its own
 * process: no other file sees the variable, and `auto` still picks epoll.
 */
import { kqueueStandIn } from './build.js';

if (process.platform === 'linux' && !process.env.WASMUX_KQUEUE_LIBRARY) {
  const standIn = kqueueStandIn();
  if ('libraries' in standIn) process.env.WASMUX_KQUEUE_LIBRARY = standIn.libraries[64];
}
