// The ws plugin's limits, from ctx.config (`wasmux run --config "..."`):
// `key=value` pairs separated by spaces or commas, integers only (but
// `version`, a name), e.g.
//
//   --config "maxMessage=65536 maxQueue=262144 closeTimeoutMs=2000"
//
// An unknown key or a value out of range makes run() fail with a message
// naming it: a typo must not silently leave a default in place.

import { memoryLimit } from "../../sdk";

const KiB: i64 = 1024;
const MiB: i64 = 1024 * KiB;

export class Limits {
  /** Largest message, after reassembling fragments. Bigger: close 1009. */
  maxMessage: i32 = <i32>MiB;
  /**
   * Bytes a reader may leave waiting (queued here and not yet taken by its
   * socket) when a new message arrives for it. Beyond: it is dropped, close 1008.
   */
  maxQueue: i32 = <i32>MiB;
  /**
   * Everything the room holds for its clients at once: messages being
   * received, and frames waiting for readers (a frame sent to many readers
   * counts once). Beyond: the reader with the most waiting is dropped
   * (1008), or, for a message being received, its sender (1013). Default:
   * a quarter of the instance's memory cap (16 MiB at the default 64 MiB).
   */
  maxBuffered: i64 = <i64>(memoryLimit() / 4);
  /** Largest upgrade request (request line and headers). Bigger: 431. */
  maxRequest: i32 = <i32>(8 * KiB);
  /** A connection that has not completed its upgrade by then is closed. */
  handshakeTimeoutMs: u32 = 10_000;
  /** After our close frame: how long the client gets to close its side. */
  closeTimeoutMs: u32 = 1_000;
  /** A name for this deployment, logged at start (`version=v2`): tells versions apart across reloads. */
  version: string = "";
  /** Live handover on a reload: take the previous version's clients (1) or let them drain (0). */
  handover: bool = true;
}

/** Fills `limits` from `config`. Returns null, or what is wrong with it. */
export function parseLimits(config: string, limits: Limits): string | null {
  const items = config.replaceAll(",", " ").split(" ");
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    if (item.length == 0) continue;
    const eq = item.indexOf("=");
    if (eq <= 0) return "config: expected key=value, got '" + item + "'";
    const key = item.substring(0, eq);
    if (key == "version") {
      limits.version = item.substring(eq + 1);
      continue;
    }
    const v = parseInteger(item.substring(eq + 1));
    let ok = true;
    if (key == "maxMessage") { ok = v >= 125 && v <= 64 * MiB; limits.maxMessage = <i32>v; }
    else if (key == "maxQueue") { ok = v >= 1 * KiB && v <= 256 * MiB; limits.maxQueue = <i32>v; }
    else if (key == "maxBuffered") { ok = v >= 64 * KiB && v <= 1024 * MiB; limits.maxBuffered = v; }
    else if (key == "maxRequest") { ok = v >= 256 && v <= 64 * KiB; limits.maxRequest = <i32>v; }
    else if (key == "handshakeTimeoutMs") { ok = v >= 1 && v <= 3_600_000; limits.handshakeTimeoutMs = <u32>v; }
    else if (key == "closeTimeoutMs") { ok = v >= 1 && v <= 600_000; limits.closeTimeoutMs = <u32>v; }
    else if (key == "handover") { ok = v == 0 || v == 1; limits.handover = v == 1; }
    else return "config: unknown key '" + key + "' (known: maxMessage, maxQueue, maxBuffered, maxRequest, handshakeTimeoutMs, closeTimeoutMs, version, handover)";
    if (!ok) return "config: " + key + " is out of range: '" + item.substring(eq + 1) + "'";
  }
  return null;
}

// A non-negative decimal integer, or -1.
function parseInteger(s: string): i64 {
  if (s.length == 0 || s.length > 12) return -1;
  let v: i64 = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
