// UTF-8 validation (RFC 3629), incremental: text that arrives in pieces
// (a WebSocket message in fragments, a body read chunk by chunk) is checked
// piece by piece, a character split across two pieces included, and an
// error is found at the first bad byte rather than at the end.
//
//   const v = new Utf8Validator();
//   if (!v.feed(ptr, len)) ...          // invalid: stop now
//   if (!v.complete) ...                // at the end: a character is cut short
//
// Rejected, as RFC 3629 requires: overlong forms (C0, C1, E0 80..9F,
// F0 80..8F), UTF-16 surrogates (ED A0..BF), code points above U+10FFFF
// (F4 90.., F5..FF), stray continuation bytes, truncated sequences.

export class Utf8Validator {
  // Continuation bytes still expected in the current character, and the
  // range the next one must fall in (narrower than 80..BF right after the
  // lead bytes that have overlong, surrogate or out-of-range forms).
  private need: i32 = 0;
  private lo: u32 = 0x80;
  private hi: u32 = 0xbf;
  private failed: bool = false;

  /** Forgets everything seen: starts a new text. */
  reset(): void {
    this.need = 0;
    this.lo = 0x80;
    this.hi = 0xbf;
    this.failed = false;
  }

  /** True while everything fed so far could begin valid UTF-8. */
  get valid(): bool { return !this.failed; }

  /** True when everything fed so far is valid UTF-8 and ends on a whole character. */
  get complete(): bool { return !this.failed && this.need == 0; }

  /** Checks `len` more bytes at `ptr`. Returns false (and stays false) at the first invalid byte. */
  feed(ptr: usize, len: i32): bool {
    if (this.failed) return false;
    let need = this.need;
    let lo = this.lo;
    let hi = this.hi;
    let i = 0;
    while (i < len) {
      if (need == 0) {
        // ASCII runs are the common case: skip them eight bytes at a time.
        while (i + 8 <= len && (load<u64>(ptr + <usize>i) & 0x8080808080808080) == 0) i += 8;
        if (i >= len) break;
        const b = <u32>load<u8>(ptr + <usize>i);
        i++;
        if (b < 0x80) continue;
        lo = 0x80;
        hi = 0xbf;
        if (b >= 0xc2 && b <= 0xdf) need = 1;
        else if (b == 0xe0) { need = 2; lo = 0xa0; }
        else if (b >= 0xe1 && b <= 0xef) { need = 2; if (b == 0xed) hi = 0x9f; }
        else if (b == 0xf0) { need = 3; lo = 0x90; }
        else if (b >= 0xf1 && b <= 0xf4) { need = 3; if (b == 0xf4) hi = 0x8f; }
        else { this.failed = true; return false; } // 80..C1 or F5..FF cannot start a character
      } else {
        const b = <u32>load<u8>(ptr + <usize>i);
        i++;
        if (b < lo || b > hi) { this.failed = true; return false; }
        need--;
        lo = 0x80;
        hi = 0xbf;
      }
    }
    this.need = need;
    this.lo = lo;
    this.hi = hi;
    return true;
  }
}

/** True when the `len` bytes at `ptr` are complete, valid UTF-8. */
export function isValidUtf8(ptr: usize, len: i32): bool {
  const v = new Utf8Validator();
  return v.feed(ptr, len) && v.complete;
}
