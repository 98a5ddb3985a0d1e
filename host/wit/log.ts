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
import { LEVEL_NAMES } from '../generated/contract.js';
import { LOG_MAX_BYTES } from '../sandbox/log-limiter.js';
import type { GlueContext } from './context.js';
import { liftEnum } from './abi.js';

export function logImports({ mem, host }: GlueContext) {
  return {
    log(level: number, ptr: number, len: number): void {
      const name = LEVEL_NAMES[liftEnum(level, LEVEL_NAMES.length, 'log level')]!;
      ptr >>>= 0;
      len >>>= 0;
      mem.sync();
      mem.check(ptr, len);
      if (!host.admitGuestLine()) return;
      let text = mem.readString(ptr, len, LOG_MAX_BYTES);
      if (len > LOG_MAX_BYTES) text += ` … (${len - LOG_MAX_BYTES} more bytes)`;
      host.guestLine(name, text);
    },
  };
}
