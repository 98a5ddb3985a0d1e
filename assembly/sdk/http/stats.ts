// The HTTP server's counters (the http plugin shows them at GET /stats).
// Each instance (worker) counts only what it serves itself: with --workers
// N, a request sees the counters of whichever instance the kernel handed
// its connection to.

import { ByteBuffer } from "../buffer";
import { freeInHeap, memoryGrown } from "../memory";
import { Counter, CounterSeries } from "../metrics";

/**
 * The plugin metric `requests_total{class}` (HttpOptions.metrics): one
 * series per status class, 1xx to 5xx, by `code / 100 - 1`.
 */
export function statusClassCounters(): StaticArray<CounterSeries> {
  const c = new Counter("requests_total", "HTTP responses by status class", ["class"]);
  const out = new StaticArray<CounterSeries>(4);
  for (let i = 0; i < 4; i++) out[i] = c.series([(i + 2).toString() + "xx"]);
  return out;
}

export class HttpStats {
  /** This instance's number (ctx.instance). */
  instance: u32 = 0;
  /** Requests answered, rejected ones and 408s included, the current one too. */
  requests: u64 = 0;
  /** Of those, the ones the parser rejected (4xx/5xx that close the connection). */
  rejected: u64 = 0;
  /** Connections accepted since start. */
  connections: u64 = 0;
  /** Connections open now. */
  open: i64 = 0;
  /** Bytes received, and bytes of responses written. */
  bytesIn: u64 = 0;
  bytesOut: u64 = 0;

  /** Writes the counters as one JSON object. */
  writeJson(out: ByteBuffer): void {
    out.writeString("{\"instance\":");
    out.writeDecimal(this.instance);
    out.writeString(",\"requests\":");
    out.writeDecimal(this.requests);
    out.writeString(",\"rejected\":");
    out.writeDecimal(this.rejected);
    out.writeString(",\"connections\":");
    out.writeDecimal(this.connections);
    out.writeString(",\"open\":");
    out.writeSigned(this.open);
    out.writeString(",\"bytesIn\":");
    out.writeDecimal(this.bytesIn);
    out.writeString(",\"bytesOut\":");
    out.writeDecimal(this.bytesOut);
    // The instance's linear memory, and how much of it its allocator has free.
    out.writeString(",\"memory\":");
    out.writeDecimal(memoryGrown());
    out.writeString(",\"heapFree\":");
    out.writeSigned(freeInHeap());
    out.writeString("}\n");
  }
}

/** This instance's counters, kept by the HTTP server (server.ts). */
export const httpStats = new HttpStats();
