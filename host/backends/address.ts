/** A socket address as plain data: what crosses threads (a posted SocketAddress loses its methods). */
export interface AddressData {
  v6: boolean;
  groups: number[];
  port: number;
}

/**
 * A socket address as the host passes it around: the WIT `socket-address`
 * shape (IPv4 bytes in groups[0..4], IPv6 16-bit groups), reusable in place
 * so that accept and wait fill one object instead of allocating.
 */
export class SocketAddress {
  v6 = false;
  readonly groups = new Uint16Array(8);
  port = 0;

  static parse(text: string): SocketAddress | null {
    const out = new SocketAddress();
    let host: string;
    let portText: string;
    if (text.startsWith('[')) {
      const end = text.indexOf(']:');
      if (end < 0) return null;
      host = text.slice(1, end);
      portText = text.slice(end + 2);
      out.v6 = true;
    } else {
      const colon = text.lastIndexOf(':');
      if (colon < 0) return null;
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
      if (host === 'localhost') host = '127.0.0.1';
    }
    if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) return null;
    out.port = Number(portText);
    return (out.v6 ? parseV6(host, out.groups) : parseV4(host, out.groups)) ? out : null;
  }

  static fromData(d: AddressData): SocketAddress {
    const a = new SocketAddress();
    a.v6 = d.v6;
    a.groups.set(d.groups);
    a.port = d.port;
    return a;
  }

  toData(): AddressData {
    return { v6: this.v6, groups: Array.from(this.groups), port: this.port };
  }

  copyFrom(o: SocketAddress): void {
    this.v6 = o.v6;
    this.groups.set(o.groups);
    this.port = o.port;
  }

  clone(): SocketAddress {
    const c = new SocketAddress();
    c.copyFrom(this);
    return c;
  }

  equals(o: SocketAddress): boolean {
    if (this.v6 !== o.v6 || this.port !== o.port) return false;
    for (let i = 0; i < 8; i++) if (this.groups[i] !== o.groups[i]) return false;
    return true;
  }

  /** Same host address, any port. */
  sameHost(o: SocketAddress): boolean {
    if (this.v6 !== o.v6) return false;
    for (let i = 0; i < 8; i++) if (this.groups[i] !== o.groups[i]) return false;
    return true;
  }

  toString(): string {
    if (!this.v6) return `${this.groups[0]}.${this.groups[1]}.${this.groups[2]}.${this.groups[3]}:${this.port}`;
    return `[${formatV6(this.groups)}]:${this.port}`;
  }
}

/** RFC 5952 text: the longest run of two or more zero groups (the first of equals) becomes "::". */
function formatV6(g: Uint16Array): string {
  let at = -1;
  let len = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > len) {
      at = i;
      len = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = (from: number, to: number) => Array.from(g.subarray(from, to), (x) => x.toString(16)).join(':');
  return at < 0 ? hex(0, 8) : `${hex(0, at)}::${hex(at + len, 8)}`;
}

function parseV4(host: string, groups: Uint16Array): boolean {
  const parts = host.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i]!) || Number(parts[i]) > 255) return false;
    groups[i] = Number(parts[i]);
  }
  return true;
}

function parseV6(host: string, groups: Uint16Array): boolean {
  const halves = host.split('::');
  if (halves.length > 2) return false;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  if (halves.length === 1 ? head.length !== 8 : head.length + tail.length > 7) return false;
  const all = [...head, ...new Array(8 - head.length - tail.length).fill('0'), ...tail];
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(all[i]!)) return false;
    groups[i] = parseInt(all[i]!, 16);
  }
  return true;
}
