// The backend contract suite (test/backend/checks.ts: the checks every real
// backend passes, through its Rig) run on the simulated network, opened
// without a scenario: its wait returns at once with what is ready, so the
// checks' bounded waits see the same edges a real backend reports. Skipped,
// each with its reason: the wake-ups (a simulation has no other thread to
// wake it: a scenario runs inside its wait instead) and the drained-hook
// check, whose table is keyed by the OS backends (the simulated network
// reports its edges itself: it has no drained hook, asserted below).
import { describe, it, expect } from 'vitest';
import { SimNetwork } from '../../dist/host/sim/network.js';
import { Random } from '../../dist/host/sim/random.js';
import { VirtualClock } from '../../dist/host/sim/clock.js';
import { NO_FAULTS } from '../../dist/host/sim/faults.js';
import type { BackendModule } from '../../dist/host/backends/backend.js';
import { CHECKS, runCheck, type CheckId } from '../backend/checks.js';

const open = () =>
  new SimNetwork({
    decisions: new Random(2),
    random: new Random(1),
    clock: new VirtualClock(),
    faults: NO_FAULTS,
    record: () => {},
  }).backend();

// A BackendModule over the simulated network: only `open` is real (the checks that use wake are skipped).
const SIM = {
  name: 'sim',
  open,
  wake: () => {
    throw new Error('a simulated network has no cross-thread wake-up');
  },
  closeDescriptor: () => {},
  reserve: () => -1,
} as unknown as BackendModule;

const SKIP: Partial<Record<CheckId, string>> = {
  'wake.during-wait': 'no other thread wakes a simulation: its scenario runs inside wait',
  'wake.before-wait': 'no other thread wakes a simulation: its scenario runs inside wait',
  'rearm.which': 'its table (NEEDS_DRAINED) is keyed by the OS backends; the drained hook is checked below',
};

describe('the backend contract checks, on the simulated network', () => {
  for (const id of Object.keys(CHECKS) as CheckId[]) {
    const why = SKIP[id];
    if (why !== undefined) it.skip(`${id} (skipped: ${why})`, () => {});
    else it(`${id}: ${CHECKS[id].title}`, () => runCheck(id, SIM));
  }

  it('reports its edges itself: no drained hook, like epoll and kqueue', () => {
    expect(open().drained).toBeUndefined();
  });
});
