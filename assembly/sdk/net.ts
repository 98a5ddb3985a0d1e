import { ADDR_FAMILY, ADDR_PAYLOAD, ADDR_PORT } from "./bindings";

/**
 * An IPv4 or IPv6 address and a port: the WIT `socket-address`.
 * IPv4 keeps its four bytes in groups[0..4]; IPv6 its eight 16-bit groups.
 */
export class SocketAddress {
  isV6: bool = false;
  groups: StaticArray<u16> = new StaticArray<u16>(8);
  port: u16 = 0;

  static v4(a: u8, b: u8, c: u8, d: u8, port: u16): SocketAddress {
    const s = new SocketAddress();
    s.groups[0] = a; s.groups[1] = b; s.groups[2] = c; s.groups[3] = d;
    s.port = port;
    return s;
  }

  /**
   * Parses "1.2.3.4:80", "[::1]:80" or "[2001:db8::1]:8080".
   * Returns null when the text is not such an address.
   */
  static parse(text: string): SocketAddress | null {
    if (text.startsWith("[")) {
      const close = text.indexOf("]:");
      if (close < 0) return null;
      const port = parsePort(text.substring(close + 2));
      if (port < 0) return null;
      const s = new SocketAddress();
      s.isV6 = true;
      s.port = <u16>port;
      return parseV6(text.substring(1, close), s.groups) ? s : null;
    }
    const colon = text.lastIndexOf(":");
    if (colon < 0) return null;
    const port = parsePort(text.substring(colon + 1));
    if (port < 0) return null;
    const parts = text.substring(0, colon).split(".");
    if (parts.length != 4) return null;
    const s = new SocketAddress();
    for (let i = 0; i < 4; i++) {
      const v = parseDecimal(parts[i], 255);
      if (v < 0) return null;
      s.groups[i] = <u16>v;
    }
    s.port = <u16>port;
    return s;
  }

  /** Reads a canonical-ABI socket-address (20 bytes) at `ptr`. */
  static load(ptr: usize): SocketAddress {
    const s = new SocketAddress();
    s.loadFrom(ptr);
    return s;
  }

  /** Overwrites this address with the canonical-ABI socket-address at `ptr`. */
  loadFrom(ptr: usize): void {
    this.isV6 = load<u8>(ptr + ADDR_FAMILY) == 1;
    const g = this.groups;
    if (this.isV6) {
      for (let i = 0; i < 8; i++) g[i] = load<u16>(ptr + ADDR_PAYLOAD + (<usize>i << 1));
    } else {
      for (let i = 0; i < 4; i++) g[i] = load<u8>(ptr + ADDR_PAYLOAD + <usize>i);
      for (let i = 4; i < 8; i++) g[i] = 0;
    }
    this.port = load<u16>(ptr + ADDR_PORT);
  }

  /** A copy of this address. */
  clone(): SocketAddress {
    const s = new SocketAddress();
    s.isV6 = this.isV6;
    for (let i = 0; i < 8; i++) s.groups[i] = this.groups[i];
    s.port = this.port;
    return s;
  }

  /** Group `i` as a flat canonical-ABI value (unused slots are 0). */
  flat(i: i32): u32 {
    return !this.isV6 && i >= 4 ? 0 : <u32>this.groups[i];
  }

  /**
   * The address without its port: "203.0.113.7", or IPv6 in RFC 5952 form
   * ("2001:db8::7": lower case, the longest run of two or more zero groups
   * as "::", the first of equal runs).
   */
  ipText(): string {
    if (!this.isV6) return `${this.groups[0]}.${this.groups[1]}.${this.groups[2]}.${this.groups[3]}`;
    let at = -1;
    let len = 0;
    for (let i = 0; i < 8; ) {
      if (this.groups[i] != 0) { i++; continue; }
      let j = i;
      while (j < 8 && this.groups[j] == 0) j++;
      if (j - i > len && j - i >= 2) { at = i; len = j - i; }
      i = j;
    }
    let s = "";
    for (let i = 0; i < 8; i++) {
      if (i == at) { s += "::"; i += len - 1; continue; }
      if (s.length > 0 && !s.endsWith(":")) s += ":";
      s += (<u32>this.groups[i]).toString(16);
    }
    return s;
  }

  toString(): string {
    if (!this.isV6) {
      return `${this.groups[0]}.${this.groups[1]}.${this.groups[2]}.${this.groups[3]}:${this.port}`;
    }
    let s = "[";
    for (let i = 0; i < 8; i++) {
      if (i > 0) s += ":";
      s += (<u32>this.groups[i]).toString(16);
    }
    return s + "]:" + this.port.toString();
  }
}

function parseDecimal(s: string, max: i32): i32 {
  if (s.length == 0 || s.length > 5) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v <= max ? v : -1;
}

function parsePort(s: string): i32 {
  return parseDecimal(s, 65535);
}

function parseHexGroup(s: string): i32 {
  if (s.length == 0 || s.length > 4) return -1;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let d: i32;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    v = (v << 4) | d;
  }
  return v;
}

// IPv6 text form with at most one "::". Embedded IPv4 tails are not accepted.
function parseV6(s: string, out: StaticArray<u16>): bool {
  const gap = s.indexOf("::");
  if (gap >= 0 && s.indexOf("::", gap + 1) >= 0) return false;
  const head = gap >= 0 ? s.substring(0, gap) : s;
  const tail = gap >= 0 ? s.substring(gap + 2) : "";
  const h = head.length > 0 ? head.split(":") : new Array<string>(0);
  const t = tail.length > 0 ? tail.split(":") : new Array<string>(0);
  if (gap < 0 && h.length != 8) return false;
  if (h.length + t.length > (gap >= 0 ? 7 : 8)) return false;
  for (let i = 0; i < 8; i++) out[i] = 0;
  for (let i = 0; i < h.length; i++) {
    const v = parseHexGroup(h[i]);
    if (v < 0) return false;
    out[i] = <u16>v;
  }
  for (let i = 0; i < t.length; i++) {
    const v = parseHexGroup(t[i]);
    if (v < 0) return false;
    out[8 - t.length + i] = <u16>v;
  }
  return true;
}
