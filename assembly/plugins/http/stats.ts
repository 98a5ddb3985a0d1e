// Counters for GET /stats. Each instance (worker) counts only what it
// serves itself: with --workers N, /stats answers for whichever instance the
// kernel handed the connection to.

import { ByteBuffer } from "../../sdk";

export class Stats {
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
    out.writeString("}\n");
  }
}

export const stats = new Stats();
