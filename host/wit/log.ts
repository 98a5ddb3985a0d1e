/**
 * Host side of wasmux:plugin/log@0.1.0 (wit/log.wit).
 *
 * Messages are capped at MAX_MESSAGE bytes and a plugin may write at most
 * BURST lines at once, refilled at RATE per second: a guest that logs in a
 * loop cannot flood the host's output. Dropped lines are counted and the
 * count is reported with the next line that gets through.
 */
import { GuestTrap } from './traps.js';
import { LOG_LEVELS, type InstanceContext } from './context.js';

const MAX_MESSAGE = 4096;
const BURST = 200;
const RATE = 100;

export function logImports(ctx: InstanceContext) {
  const { mem } = ctx;
  let tokens = BURST;
  let last = performance.now();
  let dropped = 0;

  return {
    log(level: number, ptr: number, len: number): void {
      level >>>= 0;
      const name = LOG_LEVELS[level];
      if (name === undefined) throw new GuestTrap(`invalid log level ${level}`);
      ptr >>>= 0;
      len >>>= 0;
      mem.sync();
      mem.check(ptr, len);
      const now = performance.now();
      tokens = Math.min(BURST, tokens + ((now - last) / 1000) * RATE);
      last = now;
      if (tokens < 1) {
        dropped++;
        return;
      }
      tokens--;
      let text = mem.readString(ptr, len, MAX_MESSAGE);
      if (len > MAX_MESSAGE) text += ` … (${len - MAX_MESSAGE} more bytes)`;
      if (dropped > 0) {
        text += ` (${dropped} earlier lines dropped: rate limit)`;
        dropped = 0;
      }
      ctx.log(name, text);
    },
  };
}
