/**
 * Vitest global setup: builds the kqueue stand-in once per run on Linux
 * (test/stand-ins/kqueue/build.ts: two `cc` runs, about a second, when
 * kqueue.c changed; a hash check otherwise), so that the kqueue backend's
 * tests run here instead of being skipped. A failed build is reported here
 * and again, as a failure, by each test file that needs the stand-in.
 */
import { kqueueStandIn } from './stand-ins/kqueue/build.js';

export default function setup(): void {
  try {
    const standIn = kqueueStandIn();
    if ('skip' in standIn) process.stderr.write(`kqueue stand-in: not built (${standIn.skip})\n`);
  } catch (e) {
    process.stderr.write(`kqueue stand-in: ${(e as Error).message}\n`);
  }
}
