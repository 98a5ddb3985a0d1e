// A message being reassembled from its frames, unmasked, in a buffer on
// loan from the SDK's pool while the message is under way: an idle
// connection holds none, and a busy one allocates nothing per message.

import { ByteBuffer } from "../../sdk";
import { EMPTY_BUFFER, giveBuffer, takeBuffer } from "../../sdk/pool";

export class MessageBuffer {
  private buf: ByteBuffer = EMPTY_BUFFER;

  /** Start of the bytes (valid until the next append). */
  get ptr(): usize { return this.buf.ptr; }

  get length(): i32 { return this.buf.length; }

  /** Appends `n` bytes (contents up to the caller) and returns where they start. */
  append(n: i32): usize {
    if (this.buf === EMPTY_BUFFER) this.buf = takeBuffer();
    const at = this.buf.reserve(n);
    this.buf.commit(n);
    return at;
  }

  /** Empties it for the next message; the buffer goes back to the pool. */
  clear(): void {
    if (this.buf !== EMPTY_BUFFER) {
      giveBuffer(this.buf);
      this.buf = EMPTY_BUFFER;
    }
  }

  /** The connection is gone. */
  free(): void {
    this.clear();
  }
}
