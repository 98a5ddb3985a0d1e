// Errors as values. AssemblyScript has no exceptions, so every fallible SDK
// call returns a number: 0 or more on success (bytes, a count), or one of
// these negative codes. Their order is the WIT `error-code` enum's order.

export enum IoError {
  WouldBlock = -1,
  BadHandle = -2,
  Denied = -3,
  AddressInUse = -4,
  Refused = -5,
  Reset = -6,
  Closed = -7,
  TimedOut = -8,
  Limit = -9,
  Invalid = -10,
  Other = -11,
}

/** Converts a WIT error-code (0-based enum value) to an IoError. */
// @ts-ignore: decorator
@inline export function fromWit(code: u32): i32 {
  return -1 - <i32>code;
}

const NAMES: StaticArray<string> = [
  "would-block", "bad-handle", "denied", "address-in-use", "refused", "reset",
  "closed", "timed-out", "limit", "invalid", "other",
];

/** The WIT name of an error (`"would-block"`), or `"ok"` for a non-negative value. */
export function errorName(e: i32): string {
  if (e >= 0) return "ok";
  const i = -1 - e;
  return i < NAMES.length ? NAMES[i] : "unknown";
}
