// Errors as values. AssemblyScript has no exceptions, so every fallible SDK
// call returns a number: 0 or more on success (bytes, a count), or one of
// these negative codes: -1 - the WIT `error-code` (generated/contract.ts).

import { ERROR_CODE_NAMES, ErrorCode } from "./generated/contract";

export enum IoError {
  WouldBlock = -1 - ErrorCode.WouldBlock,
  BadHandle = -1 - ErrorCode.BadHandle,
  Denied = -1 - ErrorCode.Denied,
  AddressInUse = -1 - ErrorCode.AddressInUse,
  Refused = -1 - ErrorCode.Refused,
  Reset = -1 - ErrorCode.Reset,
  Closed = -1 - ErrorCode.Closed,
  TimedOut = -1 - ErrorCode.TimedOut,
  Limit = -1 - ErrorCode.Limit,
  Invalid = -1 - ErrorCode.Invalid,
  Other = -1 - ErrorCode.Other,
}

/** Converts a WIT error-code (0-based enum value) to an IoError. */
// @ts-ignore: decorator
@inline export function fromWit(code: u32): i32 {
  return -1 - <i32>code;
}


/** The WIT name of an error (`"would-block"`), or `"ok"` for a non-negative value. */
export function errorName(e: i32): string {
  if (e >= 0) return "ok";
  const i = -1 - e;
  return i < ERROR_CODE_NAMES.length ? ERROR_CODE_NAMES[i] : "unknown";
}
