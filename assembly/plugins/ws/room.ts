// The chat room: who is in it, and what each member still has to receive.
//
// A message goes to every member but its sender. A frame is copied straight
// into a member's output buffer while that buffer holds less than WINDOW
// bytes, so a burst of small messages leaves in one send per member, at the
// end of the loop turn. When the window is full the room first lets the
// socket take what it can; only when the socket is full too (the member
// reads slower than the room talks) does the frame go on the member's queue,
// by reference: a frame waiting for many slow readers exists once, however
// many queues it is on. The window is refilled from the queue as the socket
// drains.
//
// Memory is bounded twice. A member with more than maxQueue bytes still
// waiting when a new frame arrives is put on the eviction list instead of
// being given the frame. And the room counts everything it holds for
// members (`buffered`: each queued frame once, each queue entry, and what
// senders have reserved for messages they are still sending); past
// maxBuffered the protocol evicts the member with the most queued.
// Evicting (a close frame with 1008) is the protocol's business, in index.ts.

import { Connection, Server } from "../../sdk/server";
import { CounterSeries } from "../../sdk/metrics";
import { Limits } from "./config";
import { Opcode, MAX_SERVER_HEADER, writeHeader } from "./frames";

/** Output window per member: also the most its output buffer ever grows to. */
const WINDOW: i32 = 16 * 1024;
/** What a queue entry costs beyond the frame it points to (the array slot, its share of growth). */
const ENTRY_COST: i64 = 16;
/** Entries before the head are cut off a queue once this many have gone. */
const QUEUE_KEEP: i32 = 1024;
/** The queue of a member with nothing queued: empty, shared, never pushed to. */
const NO_FRAMES: Frame[] = [];

/** A server frame (header and payload) in its own heap block, shared by every queue it is on. */
class Frame {
  readonly ptr: usize;
  /** Queue entries pointing here; the block is freed when the last one goes. */
  refs: i32 = 0;

  constructor(readonly length: i32) {
    this.ptr = heap.alloc(<usize>length);
  }
}

/** A connection as the room sees it. The protocol's connection class extends this. */
export class Member extends Connection {
  /** Position in room.members; -1 when not in the room. */
  roomIndex: i32 = -1;
  /** Frames waiting for space in the output window, from `head` on (an array of its own only while any wait). */
  queue: Frame[] = NO_FRAMES;
  head: i32 = 0;
  /** Bytes of queue[head] already copied into the output. */
  headCopied: i32 = 0;
  /** Queued bytes not yet copied into the output. */
  queued: i32 = 0;
  /** On the list of members to send to at the end of the loop turn. */
  dirty: bool = false;
  /** On the eviction list. */
  evicting: bool = false;

  /** Bytes this member has yet to take: in its output window and in its queue. */
  get backlog(): i32 { return this.pending + this.queued; }
}

export class Room<M extends Member> {
  readonly members: M[] = [];
  /** Bytes held for members: queued frames (each once), queue entries, reservations. */
  buffered: i64 = 0;
  private dirty: M[] = [];
  private dirtyNext: M[] = [];
  private evictions: M[] = [];
  private header: usize = heap.alloc(<usize>MAX_SERVER_HEADER);
  private headerLen: i32 = 0;
  // The frame being sent, once a queue needed it (one per broadcast).
  private frame: Frame | null = null;

  /** The plugin metrics messages_total and messages_delivered_total (set at start), or null. */
  messages: CounterSeries | null = null;
  delivered: CounterSeries | null = null;

  constructor(readonly limits: Limits) {}

  join(m: M): void {
    m.roomIndex = this.members.length;
    this.members.push(m);
  }

  leave(m: M): void {
    const i = m.roomIndex;
    if (i < 0) return;
    const last = this.members.pop();
    if (last !== m) {
      this.members[i] = last;
      last.roomIndex = i;
    }
    m.roomIndex = -1;
  }

  /** Sends a message to every member but `from`. */
  broadcast(from: M, opcode: u8, ptr: usize, len: i32, server: Server<M>): void {
    this.begin(opcode, len);
    let n = 0;
    // Backwards: a member that leaves while we send (its socket failed)
    // is swapped with the last one, which has been served already.
    for (let i = this.members.length - 1; i >= 0; i--) {
      if (i >= this.members.length) continue;
      const m = this.members[i];
      if (m === from) continue;
      if (this.admits(m, server)) {
        this.deliver(m, ptr, len, server);
        n++;
      }
    }
    this.end();
    const messages = this.messages;
    if (messages !== null) messages.inc();
    const delivered = this.delivered;
    if (delivered !== null && n > 0) delivered.add(<f64>n);
  }

  /**
   * Sends one frame to one member (a pong, a close). A close frame is
   * always accepted: it is how an evicted member learns why.
   */
  sendTo(m: M, opcode: u8, ptr: usize, len: i32, server: Server<M>): void {
    this.begin(opcode, len);
    if (opcode == Opcode.CLOSE || this.admits(m, server)) this.deliver(m, ptr, len, server);
    this.end();
  }

  get hasEvictions(): bool { return this.evictions.length > 0; }

  /** The members found over maxQueue since the last call; the caller evicts them. */
  takeEvictions(): M[] {
    const e = this.evictions;
    this.evictions = [];
    return e;
  }

  /** The member with the most bytes queued (not merely in its window), or null. */
  largestQueue(): M | null {
    let best: M | null = null;
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[i];
      if (m.queued > 0 && (best === null || m.queued > best.queued)) best = m;
    }
    return best;
  }

  /** Holds `n` bytes of the budget for a message being received. False when they do not fit. */
  reserve(n: i64): bool {
    if (this.buffered + n > this.limits.maxBuffered) return false;
    this.buffered += n;
    return true;
  }

  unreserve(n: i64): void {
    this.buffered -= n;
  }

  /** Marks `m` to be sent to at the end of the loop turn. */
  markDirty(m: M): void {
    if (m.dirty) return;
    m.dirty = true;
    this.dirty.push(m);
  }

  /** The members marked since the last call (their flags stay set until they are served). */
  takeDirty(): M[] {
    const d = this.dirty;
    this.dirty = this.dirtyNext;
    this.dirty.length = 0;
    this.dirtyNext = d;
    return d;
  }

  /**
   * Moves m's queue into its window and its window into its socket, until
   * the socket is full or nothing is left.
   */
  pump(m: M, server: Server<M>): void {
    while (!m.closed) {
      this.fill(m);
      server.flush(m);
      if (m.closed || m.pending > 0 || m.queued == 0) return;
    }
  }

  /**
   * Drops the frames m has not started to receive (a close frame is about to
   * follow, and nothing may follow that). A frame partly in its window stays:
   * the client must receive it whole.
   */
  discard(m: M): void {
    const keep = m.headCopied > 0 ? 1 : 0;
    for (let i = m.head + keep; i < m.queue.length; i++) {
      m.queued -= m.queue[i].length;
      this.unref(m.queue[i]);
    }
    m.queue.length = m.head + keep;
    this.compact(m);
  }

  /** Copies the bytes queued for m (not yet in its window) to `dst` (m.queued bytes): its handover. */
  copyQueued(m: M, dst: usize): void {
    let at = dst;
    for (let i = m.head; i < m.queue.length; i++) {
      const f = m.queue[i];
      const skip = i == m.head ? m.headCopied : 0;
      memory.copy(at, f.ptr + <usize>skip, <usize>(f.length - skip));
      at += <usize>(f.length - skip);
    }
  }

  /** Lets go of everything m holds (it is closed). */
  release(m: M): void {
    for (let i = m.head; i < m.queue.length; i++) this.unref(m.queue[i]);
    m.queue = NO_FRAMES;
    m.head = 0;
    m.headCopied = 0;
    m.queued = 0;
  }

  // ---- internals ---------------------------------------------------------

  // Prepares the header of the frame about to be sent.
  private begin(opcode: u8, len: i32): void {
    this.headerLen = writeHeader(this.header, opcode, len);
    this.frame = null;
  }

  private end(): void {
    this.frame = null; // the queues that took it hold it now
  }

  // Whether m may be given another frame: not when it still has more than
  // maxQueue waiting after its socket took what it could (then it goes on
  // the eviction list).
  private admits(m: M, server: Server<M>): bool {
    if (m.evicting) return false;
    if (m.backlog <= this.limits.maxQueue) return true;
    this.pump(m, server);
    if (m.closed) return false;
    if (m.backlog <= this.limits.maxQueue) return true;
    m.evicting = true;
    this.evictions.push(m);
    return false;
  }

  // Gives m the current frame (header prepared by begin, payload at ptr).
  private deliver(m: M, ptr: usize, len: i32, server: Server<M>): void {
    const size = this.headerLen + len;
    // Window full: let the socket take it before queueing anything.
    if (m.queued == 0 && m.pending > 0 && m.pending + size > WINDOW) {
      this.pump(m, server);
      if (m.closed) return;
    }
    if (m.queued == 0 && m.pending + size <= WINDOW) {
      m.output.writeBytes(this.header, this.headerLen);
      m.output.writeBytes(ptr, len);
    } else {
      let f = this.frame;
      if (f === null) {
        f = new Frame(size);
        memory.copy(f.ptr, this.header, <usize>this.headerLen);
        memory.copy(f.ptr + <usize>this.headerLen, ptr, <usize>len);
        this.frame = f;
      }
      if (f.refs == 0) this.buffered += <i64>f.length;
      f.refs++;
      this.buffered += ENTRY_COST;
      if (m.queue === NO_FRAMES) m.queue = new Array<Frame>();
      m.queue.push(f);
      m.queued += f.length;
    }
    this.markDirty(m);
  }

  // Copies from m's queue into its output window while there is space.
  private fill(m: M): void {
    while (m.queued > 0) {
      const space = WINDOW - m.pending;
      if (space <= 0) break;
      const f = m.queue[m.head];
      const n = min(space, f.length - m.headCopied);
      m.output.writeBytes(f.ptr + <usize>m.headCopied, n);
      m.headCopied += n;
      m.queued -= n;
      if (m.headCopied == f.length) {
        this.unref(f);
        m.head++;
        m.headCopied = 0;
      }
    }
    this.compact(m);
  }

  // Forgets the entries before m.head.
  private compact(m: M): void {
    if (m.head < m.queue.length) {
      if (m.head >= QUEUE_KEEP) {
        m.queue = m.queue.slice(m.head);
        m.head = 0;
      }
      return;
    }
    m.queue = NO_FRAMES; // the array goes: an idle member holds none
    m.head = 0;
  }

  private unref(f: Frame): void {
    this.buffered -= ENTRY_COST;
    if (--f.refs == 0) {
      this.buffered -= <i64>f.length;
      heap.free(f.ptr);
    }
  }
}
