/**
 * Host side of wasmux:plugin/log@0.1.0 (wit/log.wit).
 *
 * A guest's line goes through the instance's log limiter like every line
 * written on its behalf (sandbox/log-limiter.ts): a suppressed line is
 * counted, never decoded. Text past LOG_MAX_BYTES is cut and its length
 * said; invalid UTF-8 becomes U+FFFD in the decoder; control characters are
 * escaped by the sink (supervisor/logger.ts), which also marks the line as
 * the guest's.
 */
import { GuestTrap } from './traps.js';
import { LOG_LEVELS, type InstanceContext } from './context.js';
import { LOG_GUEST, LOG_MAX_BYTES } from '../sandbox/log-limiter.js';

export function logImports(ctx: InstanceContext) {
  const { mem, logLimit } = ctx;

  return {
    log(level: number, ptr: number, len: number): void {
      level >>>= 0;
      const name = LOG_LEVELS[level];
      if (name === undefined) throw new GuestTrap(`invalid log level ${level}`);
      ptr >>>= 0;
      len >>>= 0;
      mem.sync();
      mem.check(ptr, len);
      if (!logLimit.admit(LOG_GUEST)) return;
      let text = mem.readString(ptr, len, LOG_MAX_BYTES);
      if (len > LOG_MAX_BYTES) text += ` … (${len - LOG_MAX_BYTES} more bytes)`;
      ctx.log(name, 'guest', text);
    },
  };
}
