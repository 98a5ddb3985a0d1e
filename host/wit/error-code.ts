/**
 * The WIT `error-code` enum of wasmux:plugin/poll (wit/poll.wit), by value.
 * Host-internal functions return `fail(code)` (a negative number) where a
 * result can carry an error, so the hot path allocates no error objects.
 */
export const enum ErrorCode {
  WouldBlock = 0,
  BadHandle = 1,
  Denied = 2,
  AddressInUse = 3,
  Refused = 4,
  Reset = 5,
  Closed = 6,
  TimedOut = 7,
  Limit = 8,
  Invalid = 9,
  Other = 10,
}

export const ERROR_CODE_NAMES = [
  'would-block', 'bad-handle', 'denied', 'address-in-use', 'refused', 'reset',
  'closed', 'timed-out', 'limit', 'invalid', 'other',
] as const;

/** Encodes an error code as a negative return value (-1 - code). */
export function fail(code: ErrorCode): number {
  return -1 - code;
}

/** Decodes a negative return value made by `fail`. */
export function codeOf(result: number): ErrorCode {
  return (-1 - result) as ErrorCode;
}

/** The WIT `interest` flags. */
export const INTEREST_READABLE = 1;
export const INTEREST_WRITABLE = 2;

/** The WIT `readiness` flags. */
export const READY_READABLE = 1;
export const READY_WRITABLE = 2;
export const READY_READ_CLOSED = 4;
export const READY_HANG_UP = 8;
export const READY_ERROR = 16;
