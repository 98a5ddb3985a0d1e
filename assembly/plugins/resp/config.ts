// The plugin's settings, from the host's --config string, and what CONFIG GET
// reports.
//
// --config takes space- or comma-separated key=value pairs, keys named as in
// redis.conf, sizes with Redis's units (1k = 1000, 1kb = 1024, m, mb, g, gb):
//
//   maxmemory=24mb hz=10 proto-max-bulk-len=8mb client-query-buffer-limit=16mb maxmemory-clients=16mb
//
// The defaults follow the instance's memory cap (`--max-memory`, told by
// the host through wasmux:plugin/limits), so that an operator who gives the
// instance more memory gets a larger store and larger values without
// touching the config: maxmemory is 3/8 of the cap and proto-max-bulk-len
// an eighth of it (24 MiB and 8 MiB at the default 64 MiB: a 4 MB value is
// stored and read back at the defaults). Past the cap an allocation traps
// and the instance restarts empty, so the store's own bytes are counted
// exactly and kept within maxmemory after every command; on top of them the
// instance needs its runtime and collector's slack (a few MiB), about 300
// bytes per idle connection, requests still arriving (at most
// maxmemory-clients in large values, which their buffers may double while
// growing) and replies not yet taken by slow clients (about 1 MiB plus one
// value per connection before it stops running that client's requests).
// When those together come near the cap the SDK's Server refuses new
// clients (-ERR max number of clients reached) and closes the ones sending
// the largest requests, so a flood does not trap the instance.
//
// maxmemory also bounds time: FLUSHALL frees every key at once, about 0.3 us
// per key (85 ms for the 312,000 small keys that fill the default 24 MiB),
// and every command must end inside the policy's cpuBudgetMs (200 ms by
// default) or the host ends the instance. With a much larger maxmemory,
// raise cpuBudgetMs too.

import { memoryLimit } from "../../sdk";

const MiB: u64 = 1024 * 1024;

export class Settings {
  /** The instance's memory cap, which the defaults follow. */
  readonly cap: u64 = memoryLimit();
  /** Bytes the store may hold; writes beyond get -OOM. */
  maxmemory: u64 = this.cap / 8 * 3;
  /** Active expiry cycles per second. */
  hz: i32 = 10;
  /** The longest bulk string a request may carry (0: an eighth of the memory cap). */
  maxBulk: u64 = 0;
  /** The longest request (0: derived from maxBulk). */
  maxRequest: u64 = 0;
  /** Large bulks still arriving, all connections together (0: derived from maxmemory). */
  maxClients: u64 = 0;

  /** Fills the derived values; returns an error message or null. */
  finish(): string | null {
    if (this.maxmemory < 64 * 1024) return "maxmemory must be at least 64kb";
    if (this.maxmemory > this.cap) return "maxmemory must be at most the instance's memory cap (" + this.cap.toString() + " bytes, --max-memory)";
    if (this.hz < 1 || this.hz > 500) return "hz must be 1 to 500";
    // A value may take an eighth of the memory cap: one can be received
    // (its buffer doubling as it grows) and stored next to a full store.
    if (this.maxBulk == 0) this.maxBulk = max<u64>(this.cap / 8, 1024);
    if (this.maxRequest == 0) this.maxRequest = this.maxBulk * 2 + 64 * 1024;
    // Requests in flight on all connections: a quarter of the budget, which
    // their buffers may double while they grow.
    if (this.maxClients == 0) this.maxClients = max(this.maxmemory / 4, this.maxRequest);
    if (this.maxBulk < 1024 || this.maxBulk > 512 * MiB) return "proto-max-bulk-len must be 1kb to 512mb";
    if (this.maxRequest < this.maxBulk) return "client-query-buffer-limit must be at least proto-max-bulk-len";
    if (this.maxClients < this.maxBulk) return "maxmemory-clients must be at least proto-max-bulk-len";
    return null;
  }

  /** Parameters for CONFIG GET, as name, value, name, value... in reply order. */
  parameters(): string[] {
    return [
      "maxmemory", this.maxmemory.toString(),
      "maxmemory-policy", "noeviction",
      "hz", this.hz.toString(),
      "proto-max-bulk-len", this.maxBulk.toString(),
      "client-query-buffer-limit", this.maxRequest.toString(),
      "maxmemory-clients", this.maxClients.toString(),
      "databases", "1",
      // No persistence: what redis-benchmark and tools ask before they start.
      "save", "",
      "appendonly", "no",
    ];
  }
}

/** Parses the --config string. Returns the settings, or null with `configError` set. */
export function parseSettings(text: string): Settings | null {
  const s = new Settings();
  const words = text.replaceAll(",", " ").split(" ");
  for (let i = 0; i < words.length; i++) {
    const word = words[i].trim();
    if (word.length == 0) continue;
    const eq = word.indexOf("=");
    if (eq <= 0) return invalid("expected key=value, got '" + word + "'");
    const key = word.substring(0, eq).toLowerCase();
    const value = word.substring(eq + 1);
    if (key == "hz") {
      const n = parseSize(value);
      if (n < 0 || n.toString() != value) return invalid("hz: '" + value + "' is not a number");
      s.hz = <i32>min<i64>(n, 1000); // finish() checks the range
      continue;
    }
    const n = parseSize(value);
    if (n < 0) return invalid(key + ": '" + value + "' is not a size (like 1048576, 512kb or 16mb)");
    if (key == "maxmemory") s.maxmemory = <u64>n;
    else if (key == "proto-max-bulk-len") s.maxBulk = <u64>n;
    else if (key == "client-query-buffer-limit") s.maxRequest = <u64>n;
    else if (key == "maxmemory-clients") s.maxClients = <u64>n;
    else return invalid("unknown key '" + key + "' (known: maxmemory, hz, proto-max-bulk-len, client-query-buffer-limit, maxmemory-clients)");
  }
  const err = s.finish();
  return err === null ? s : invalid(err);
}

/** Why parseSettings returned null. */
export let configError: string = "";

function invalid(message: string): Settings | null {
  configError = message;
  return null;
}

// Redis's memtoull: digits, then an optional unit. -1 when malformed.
function parseSize(text: string): i64 {
  const t = text.toLowerCase();
  let digits = 0;
  while (digits < t.length && t.charCodeAt(digits) >= 48 && t.charCodeAt(digits) <= 57) digits++;
  if (digits == 0 || digits > 15) return -1;
  const n = I64.parseInt(t.substring(0, digits));
  const unit = t.substring(digits);
  let mul: i64 = 1;
  if (unit == "" || unit == "b") mul = 1;
  else if (unit == "k") mul = 1000;
  else if (unit == "kb") mul = 1024;
  else if (unit == "m") mul = 1000 * 1000;
  else if (unit == "mb") mul = 1024 * 1024;
  else if (unit == "g") mul = 1000 * 1000 * 1000;
  else if (unit == "gb") mul = 1024 * 1024 * 1024;
  else return -1;
  return n * mul;
}
