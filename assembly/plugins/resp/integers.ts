// Integers as Redis reads them (its string2ll): the protocol's lengths and
// counts, INCR's stored values, and every numeric argument go through this
// one strict reader. Strict matters for compatibility: " 1", "+1", "01" and
// "-0" are not integers to Redis, so "INCR" on them must fail here too.

// Longer than "-9223372036854775808" cannot be an i64.
const MAX_DIGITS_WITH_SIGN: i32 = 20;

/** The value of the last successful parseInteger. */
export let parsedInteger: i64 = 0;

/**
 * Reads the `len` bytes at `ptr` as a base-10 i64 into `parsedInteger`.
 * Returns false (leaving parsedInteger alone) unless the bytes are exactly
 * an optional '-' and digits without a leading zero, within i64.
 */
export function parseInteger(ptr: usize, len: i32): bool {
  if (len == 0 || len > MAX_DIGITS_WITH_SIGN) return false;
  if (len == 1 && load<u8>(ptr) == 48) { parsedInteger = 0; return true; }
  let i = 0;
  const negative = load<u8>(ptr) == 45; // '-'
  if (negative) {
    i = 1;
    if (len == 1) return false;
  }
  const first = load<u8>(ptr + <usize>i);
  if (first < 49 || first > 57) return false; // 1-9: no leading zeros, no "-0"
  let v: u64 = <u64>(first - 48);
  for (i++; i < len; i++) {
    const d = load<u8>(ptr + <usize>i);
    if (d < 48 || d > 57) return false;
    // Checked before it happens: an overflowed u64 cannot be told apart afterwards.
    if (v > (U64.MAX_VALUE - <u64>(d - 48)) / 10) return false;
    v = v * 10 + <u64>(d - 48);
  }
  if (negative) {
    if (v > <u64>I64.MAX_VALUE + 1) return false;
    parsedInteger = <i64>(0 - v);
  } else {
    if (v > <u64>I64.MAX_VALUE) return false;
    parsedInteger = <i64>v;
  }
  return true;
}

/** Decimal digits of `v` written at `ptr` (at most 20 bytes); returns how many. */
export function formatInteger(ptr: usize, v: i64): i32 {
  let u: u64 = v < 0 ? <u64>0 - <u64>v : <u64>v;
  let digits = 1;
  for (let t = u; t >= 10; t /= 10) digits++;
  const n = v < 0 ? digits + 1 : digits;
  if (v < 0) store<u8>(ptr, 45);
  let p = ptr + <usize>n;
  do {
    p--;
    store<u8>(p, <u8>(48 + u % 10));
    u /= 10;
  } while (u > 0);
  return n;
}
