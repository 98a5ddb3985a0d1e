// ASCII helpers for text protocols parsed straight out of memory (a
// ByteBuffer's unread bytes): byte classes, case-insensitive comparison with
// a string literal, and strict decimal / hexadecimal number parsing.
//
// They work on (pointer, length) so a parser never has to turn bytes into a
// string to look at them: most protocol text is matched against a handful of
// literals and then dropped, and allocating for that is the slow path.
//
// Literals passed as `s` are AssemblyScript strings (UTF-16); only their
// ASCII characters can ever match, which is what protocol keywords are.

const CASE_BIT: u32 = 0x20;

/** `b` with ASCII A-Z turned into a-z; every other byte unchanged. */
// @ts-ignore: decorator
@inline export function toLowerAscii(b: u32): u32 {
  return b - 65 < 26 ? b | CASE_BIT : b;
}

/** True for ASCII 0-9. */
// @ts-ignore: decorator
@inline export function isDigit(b: u32): bool {
  return b - 48 < 10;
}

/** True for ASCII A-Z and a-z. */
// @ts-ignore: decorator
@inline export function isAlpha(b: u32): bool {
  return (b | CASE_BIT) - 97 < 26;
}

/** The value of an ASCII hexadecimal digit (either case), or -1. */
export function hexDigitValue(b: u32): i32 {
  if (b - 48 < 10) return <i32>(b - 48);
  const l = b | CASE_BIT;
  if (l - 97 < 6) return <i32>(l - 87);
  return -1;
}

/** True when the `len` bytes at `ptr` are exactly the characters of `s`. */
export function equalsAscii(ptr: usize, len: i32, s: string): bool {
  if (len != s.length) return false;
  const p = changetype<usize>(s);
  for (let i = 0; i < len; i++) {
    if (<u32>load<u8>(ptr + <usize>i) != <u32>load<u16>(p + (<usize>i << 1))) return false;
  }
  return true;
}

/** Like equalsAscii, but A-Z and a-z compare equal (on both sides). */
export function equalsIgnoreCase(ptr: usize, len: i32, s: string): bool {
  if (len != s.length) return false;
  const p = changetype<usize>(s);
  for (let i = 0; i < len; i++) {
    const a = toLowerAscii(<u32>load<u8>(ptr + <usize>i));
    const b = toLowerAscii(<u32>load<u16>(p + (<usize>i << 1)));
    if (a != b) return false;
  }
  return true;
}

/** Returned by parseDecimal / parseHex when a byte is not a digit, or there are none. */
export const NOT_A_NUMBER: i64 = -1;
/** Returned by parseDecimal / parseHex when the value exceeds `max`. */
export const TOO_LARGE: i64 = -2;

/**
 * Parses the `len` bytes at `ptr` as 1*DIGIT: no sign, no spaces, no
 * prefix (leading zeros are fine). Returns the value, NOT_A_NUMBER, or
 * TOO_LARGE when it exceeds `max` (checked digit by digit, so it never
 * overflows however many digits there are).
 */
export function parseDecimal(ptr: usize, len: i32, max: i64 = i64.MAX_VALUE): i64 {
  if (len <= 0) return NOT_A_NUMBER;
  let v: i64 = 0;
  let tooLarge = false;
  for (let i = 0; i < len; i++) {
    const b = <u32>load<u8>(ptr + <usize>i);
    if (!isDigit(b)) return NOT_A_NUMBER;
    if (!tooLarge) {
      const d = <i64>(b - 48);
      if (v > (max - d) / 10) tooLarge = true;
      else v = v * 10 + d;
    }
  }
  return tooLarge ? TOO_LARGE : v;
}

/** Like parseDecimal, for 1*HEXDIG (either case, no "0x"). */
export function parseHex(ptr: usize, len: i32, max: i64 = i64.MAX_VALUE): i64 {
  if (len <= 0) return NOT_A_NUMBER;
  let v: i64 = 0;
  let tooLarge = false;
  for (let i = 0; i < len; i++) {
    const d = hexDigitValue(<u32>load<u8>(ptr + <usize>i));
    if (d < 0) return NOT_A_NUMBER;
    if (!tooLarge) {
      if (v > (max - <i64>d) >> 4) tooLarge = true;
      else v = (v << 4) + <i64>d;
    }
  }
  return tooLarge ? TOO_LARGE : v;
}
