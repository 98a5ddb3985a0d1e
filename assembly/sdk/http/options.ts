// The HTTP server's limits. A plugin usually takes them from `wasmux run
// --config` (ctx.config) or the `config` option of the programmatic serve(),
// through `parse`; it may also set the fields in code.
//
// Format: `key=value` pairs separated by commas or spaces, every value a
// positive integer, e.g. `--config idle-ms=300,max-body=65536` or
// `serve({ plugin, listen, config: 'idle-ms=300' })`. An empty string keeps
// every default. An unknown key or a bad value makes `run`
// fail at start with a message naming it (better than serving with a
// setting the operator did not get).
//
//   key          default   meaning
//   idle-ms      5000      a request that has begun must make progress within
//                          this long (its whole head, then each read of its
//                          body), or it is answered 408 and the connection closed
//   linger-ms    2000      after a response that closes the connection, how long
//                          to keep reading (and discarding) what the client still
//                          sends before closing for good (see server.ts)
//   max-body     1048576   request body limit in bytes, decoded (413 above it;
//                          at most 1 GiB)
//   max-header   8192      header section limit in bytes, the request line not
//                          included; a chunked body's trailers get the same (431)
//   max-uri      2048      request-target limit in bytes (414)
//   body-budget  cap / 8   request body bytes the whole instance buffers at once,
//                          across its connections (503 when a body would pass it;
//                          see budget.ts): an eighth of the instance's memory cap,
//                          8388608 at the default 64 MiB. At least max-body makes sense.
//   handover     1         take idle keep-alive connections over on a reload (0: no)
//   metrics      1         count responses by status class, the plugin metric
//                          requests_total{class="2xx"} (0: no; see ../metrics.ts)

import { memoryLimit } from "../memory";

export class HttpOptions {
  /**
   * Keep each request's header fields for `req.header(name)` (a copy of the
   * head per request). Off, the parser keeps only what it acts on (framing,
   * Host, Connection, Expect) and copies nothing. Not a --config key.
   */
  keepHeaders: bool = true;
  idleMs: u32 = 5000;
  lingerMs: u32 = 2000;
  maxBody: i64 = 1 << 20;
  maxHeader: i32 = 8 << 10;
  maxUri: i32 = 2 << 10;
  bodyBudget: i64 = <i64>(memoryLimit() / 8);
  /**
   * Count responses by status class as the plugin metric `requests_total{class="2xx"}`
   * (wit/metrics.wit; exported as `<plugin>_requests_total`): metrics=1, the default, or 0.
   */
  metrics: bool = true;
  /** Live handover on a reload: take the idle keep-alive connections of the version replaced (handover=1, the default) or not (0). */
  handover: bool = true;

  /** Applies `text` over the defaults. Returns null, or what is wrong with it. */
  parse(text: string): string | null {
    let i = 0;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c == 44 || c == 32) { i++; continue; } // ',' or ' ' between pairs
      let end = i;
      while (end < text.length && text.charCodeAt(end) != 44 && text.charCodeAt(end) != 32) end++;
      const err = this.apply(text.substring(i, end));
      if (err !== null) return err;
      i = end;
    }
    return null;
  }

  private apply(pair: string): string | null {
    const eq = pair.indexOf("=");
    if (eq < 0) return "config: expected key=value, got \"" + pair + "\"";
    const key = pair.substring(0, eq);
    const text = pair.substring(eq + 1);
    if (key == "metrics") {
      if (text != "0" && text != "1") return "config: metrics wants 0 or 1, got \"" + text + "\"";
      this.metrics = text == "1";
      return null;
    }
    if (key == "handover") {
      if (text != "0" && text != "1") return "config: handover wants 0 or 1, got \"" + text + "\"";
      this.handover = text == "1";
      return null;
    }
    if (key != "idle-ms" && key != "linger-ms" && key != "max-body" && key != "max-header" && key != "max-uri" &&
        key != "body-budget") {
      return "config: unknown key \"" + key + "\" (known: idle-ms, linger-ms, max-body, max-header, max-uri, body-budget, handover, metrics)";
    }
    const v = positive(text);
    if (v < 0) return "config: " + key + " wants a positive integer, got \"" + text + "\"";
    if (key == "idle-ms") this.idleMs = <u32>min(v, <i64>u32.MAX_VALUE);
    else if (key == "linger-ms") this.lingerMs = <u32>min(v, <i64>u32.MAX_VALUE);
    else if (key == "max-body") this.maxBody = min(v, <i64>(1 << 30));
    else if (key == "max-header") this.maxHeader = <i32>min(v, <i64>(1 << 30));
    else if (key == "max-uri") this.maxUri = <i32>min(v, <i64>(1 << 30));
    else this.bodyBudget = v;
    return null;
  }
}

// 1..2^53 in decimal digits, or -1.
function positive(s: string): i64 {
  if (s.length == 0 || s.length > 15) return -1;
  let v: i64 = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + <i64>d;
  }
  return v > 0 ? v : -1;
}
