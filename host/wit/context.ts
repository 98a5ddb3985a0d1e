/**
 * What the per-interface glue files (poll.ts, tcp.ts, log.ts, limits.ts,
 * clocks.ts) share for one plugin instance: the guest's memory, through
 * which they lift and lower, and the instance's host, which applies the
 * sandbox's rules (sandbox/instance-host.ts), or records or replays them
 * (sandbox/guest-host.ts).
 */
import type { GuestHost } from '../sandbox/guest-host.js';
import type { GuestMemory } from './guest-memory.js';

export interface GlueContext {
  readonly mem: GuestMemory;
  readonly host: GuestHost;
}
