// ws: a WebSocket (RFC 6455) chat room. Every message a client sends —
// text or binary, whole or in fragments — goes to every other client
// connected to the same instance, in the order each sender sent them.
//
// A connection lives through three states:
//
//   Handshake  reading the HTTP upgrade request (handshake.ts); answered
//              with 101, or with an HTTP error and then closed
//   Open       in the room: frames are read (frames.ts), messages
//              reassembled and checked, then broadcast (room.ts)
//   Closing    a close frame is on its way to the client; everything the
//              client sends is ignored; once the close frame is written
//              we shut down our side and wait (closeTimeoutMs at most)
//              for the client to close its own
//
// The server fails a connection — close frame with a code, then Closing —
// on: an unmasked frame, reserved bits, an unknown opcode, a bad
// continuation, a fragmented or oversized control frame, a bad close code
// (1002); text that is not UTF-8, in a message or a close reason (1007); a
// message over maxMessage (1009); a reader too slow for the room (1008);
// no budget left for a message being received (1013). A close from the
// client is answered with the same code. The room takes text and binary
// alike, so 1003 (unsupported data) is never sent. Limits: config.ts.
//
// The host's own policy applies too: idleTimeoutMs (60 s by default) shuts
// down a connection with no traffic either way, so a client that may sit
// silent longer should ping. Memory: an idle member holds its record (about
// 300 bytes); input, output window (16 KiB at most) and a message being
// reassembled are held only while in use; the room's buffering is capped by
// maxBuffered (a quarter of the memory cap by default), and under memory
// pressure the SDK's Server refuses new clients (503) and closes the members
// receiving the largest messages (1009).
import { Context, Counter, Handler, Server, Shutdown, TcpStream, info, serve } from "../../sdk";
import { Utf8Validator, isValidUtf8 } from "../../sdk/utf8";
import { Limits, parseLimits } from "./config";
import { CloseCode, FrameHeader, MAX_CONTROL_PAYLOAD, Opcode, isControl, isValidCloseCode, readHeader, unmask } from "./frames";
import { answerUpgrade, rejectTooLarge, requestEnd } from "./handshake";
import { MessageBuffer } from "./message";
import { Member, Room } from "./room";
export * from "../../sdk/entry";

enum State { Handshake, Open, Closing }

class Conn extends Member {
  state: State = State.Handshake;
  /** Request bytes already searched for the end of the head. */
  searched: i32 = 0;

  // The data frame whose payload is being read: FIN and masking key from
  // its header (parsed into the instance's `header`), and progress.
  fin: bool = false;
  mask: u32 = 0;
  inPayload: bool = false;
  payloadLeft: u64 = 0;
  payloadRead: u64 = 0;

  // The message being reassembled: its opcode (0 between messages), its
  // bytes so far, their UTF-8 state, and the budget held for it.
  opcode: u8 = 0;
  message: MessageBuffer = new MessageBuffer();
  utf8: Utf8Validator = new Utf8Validator();
  reserved: i64 = 0;

  /** Our side is shut down (Closing, everything written). */
  finSent: bool = false;
}

const limits = new Limits();
// The handover state: a format byte, the frame under way (opcode, fin,
// in-payload, mask, payload left and read), the lengths of the message so
// far and of the queued frames, then those bytes.
const STATE_VERSION: u8 = 1;
const STATE_HEAD: usize = 32;
const room = new Room<Conn>(limits);
// Every frame header is parsed here; a connection keeps what its payload needs.
const header = new FrameHeader();
// A close frame's payload: a 2-byte code and at most 123 bytes of reason.
const closePayload: usize = memory.data(MAX_CONTROL_PAYLOAD);

class Chat extends Handler<Conn> {
  create(key: i32, stream: TcpStream): Conn {
    return new Conn(key, stream);
  }

  onOpen(c: Conn, s: Server<Conn>): void {
    s.setTimer(c, limits.handshakeTimeoutMs);
  }

  onData(c: Conn, s: Server<Conn>): void {
    if (c.state == State.Handshake) handshake(c, s);
    if (c.state == State.Open) readFrames(c, s);
    if (c.state == State.Closing) c.input.clear(); // nothing the client says matters any more
  }

  // The client shut down its side. Without a close frame first that is an
  // abnormal closure (1006 to the client's library): nothing left to do.
  // In Closing it is the expected end, once our close frame is out.
  onEnd(c: Conn, s: Server<Conn>): void {
    if (c.state == State.Closing && c.backlog > 0) return; // service() closes once it is written
    s.drop(c);
  }

  // Handshake or close took too long.
  onTimer(c: Conn, s: Server<Conn>): void {
    s.drop(c);
  }

  onDrained(c: Conn, s: Server<Conn>): void {
    room.markDirty(c); // its queue may refill the window now
  }

  onClose(c: Conn, s: Server<Conn>): void {
    room.leave(c);
    room.release(c);
    dropMessage(c);
    c.message.free();
  }

  // Under memory pressure a new client's upgrade is refused with a 503
  // (the handshake is HTTP), and the members receiving the largest
  // messages are closed with 1009.
  refusal(): ArrayBuffer | null {
    const body = "Service Unavailable: no memory for another client\n";
    return String.UTF8.encode("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
      "Content-Length: " + body.length.toString() + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body);
  }

  incomplete(c: Conn): i64 {
    return <i64>c.input.length + <i64>c.message.length;
  }

  onShed(c: Conn, s: Server<Conn>): void {
    if (c.state == State.Handshake) {
      rejectTooLarge(c.output);
      closeAfterResponse(c, s);
    } else {
      fail(c, s, CloseCode.TOO_BIG, "message too big for the memory left");
    }
  }

  // ---- Live handover (README "Reload and handover") ----
  // An open member moves with its message under way (frame progress,
  // reassembled bytes) and the frames queued for it that its output window
  // did not take; the SDK adds its unconsumed input and its window. In the
  // new version it joins the room as it is: no new handshake, nothing lost.
  // A member still in its handshake or closing finishes here.

  adopts(): bool { return limits.handover; }

  onHandover(c: Conn, s: Server<Conn>): ArrayBuffer | null {
    if (c.state != State.Open) return null;
    const msgLen = c.message.length;
    const queued = c.queued;
    const b = new ArrayBuffer(STATE_HEAD + msgLen + queued);
    const p = changetype<usize>(b);
    store<u8>(p, STATE_VERSION);
    store<u8>(p, c.opcode, 1);
    store<u8>(p, c.fin ? 1 : 0, 2);
    store<u8>(p, c.inPayload ? 1 : 0, 3);
    store<u32>(p, c.mask, 4);
    store<u64>(p, c.payloadLeft, 8);
    store<u64>(p, c.payloadRead, 16);
    store<u32>(p, <u32>msgLen, 24);
    store<u32>(p, <u32>queued, 28);
    if (msgLen > 0) memory.copy(p + STATE_HEAD, c.message.ptr, <usize>msgLen);
    if (queued > 0) room.copyQueued(c, p + STATE_HEAD + <usize>msgLen);
    return b;
  }

  onAdopt(c: Conn, state: ArrayBuffer, s: Server<Conn>): bool {
    const p = changetype<usize>(state);
    if (state.byteLength < <i32>STATE_HEAD || load<u8>(p) != STATE_VERSION) return false;
    const msgLen = <i32>load<u32>(p, 24);
    const queued = <i32>load<u32>(p, 28);
    if (msgLen < 0 || queued < 0 || <i64>state.byteLength != <i64>STATE_HEAD + msgLen + queued) return false;
    c.opcode = load<u8>(p, 1);
    c.fin = load<u8>(p, 2) != 0;
    c.inPayload = load<u8>(p, 3) != 0;
    c.mask = load<u32>(p, 4);
    c.payloadLeft = load<u64>(p, 8);
    c.payloadRead = load<u64>(p, 16);
    if (msgLen > 0) {
      memory.copy(c.message.append(msgLen), p + STATE_HEAD, <usize>msgLen);
      // The budget it held in the old room, held in this one; its text checked again from its start.
      if (!room.reserve(<i64>msgLen + <i64>c.payloadLeft)) return false;
      c.reserved = <i64>msgLen + <i64>c.payloadLeft;
    }
    c.utf8.reset();
    if (c.opcode == Opcode.TEXT && msgLen > 0 && !c.utf8.feed(c.message.ptr, msgLen)) return false;
    // What the old room had queued for it goes out after its window (the SDK put that in c.output).
    if (queued > 0) c.output.writeBytes(p + STATE_HEAD + <usize>msgLen, queued);
    c.state = State.Open;
    room.join(c);
    return true;
  }

  // The end of each loop turn: send what the turn queued, once per member.
  onTick(now: u64, s: Server<Conn>): void {
    const dirty = room.takeDirty();
    for (let i = 0; i < dirty.length; i++) service(dirty[i], s);
  }
}

const server = new Server<Conn>(new Chat());

function main(ctx: Context): string | null {
  if (ctx.listen.length == 0) return "ws needs at least one --listen address";
  const bad = parseLimits(ctx.config, limits);
  if (bad !== null) return bad;
  // Plugin metrics (wit/metrics.wit): stores per message, reported before each wait.
  room.messages = new Counter("messages_total", "Messages received from members and broadcast").only;
  room.delivered = new Counter("messages_delivered_total", "Copies of messages handed to other members").only;
  for (let i = 0; i < ctx.listen.length; i++) {
    const err = server.listen(ctx.listen[i]);
    if (err !== null) return err;
  }
  info("ws chat room" + (limits.version.length > 0 ? " version " + limits.version : "") +
    ": maxMessage " + limits.maxMessage.toString() + ", maxQueue " + limits.maxQueue.toString() +
    ", maxBuffered " + limits.maxBuffered.toString());
  return server.run();
}

serve(main);

// ---- Handshake --------------------------------------------------------------

function handshake(c: Conn, s: Server<Conn>): void {
  const end = requestEnd(c.input, c.searched);
  if (end < 0 || end > limits.maxRequest) {
    if (c.input.length > limits.maxRequest) {
      rejectTooLarge(c.output);
      closeAfterResponse(c, s);
    } else {
      c.searched = max(0, c.input.length - 3); // the blank line may straddle the next read
    }
    return;
  }
  if (!answerUpgrade(c.input, end, c.output)) {
    closeAfterResponse(c, s);
    return;
  }
  s.clearTimer(c);
  c.state = State.Open;
  room.join(c);
}

// After an HTTP error response: the same ending as after a close frame.
function closeAfterResponse(c: Conn, s: Server<Conn>): void {
  c.state = State.Closing;
  s.setTimer(c, limits.closeTimeoutMs);
  room.markDirty(c);
}

// ---- Frames -----------------------------------------------------------------

// Reads every complete frame header and every payload byte in c.input.
// Payloads are unmasked straight into the message being reassembled, so
// the input holds at most a partial header or a partial control frame.
function readFrames(c: Conn, s: Server<Conn>): void {
  const input = c.input;
  while (c.state == State.Open) {
    if (c.inPayload) {
      const n = <i32>min<u64>(c.payloadLeft, <u64>input.length);
      if (n > 0) {
        const dst = c.message.append(n);
        unmask(dst, input.ptr, n, c.mask, c.payloadRead);
        input.consume(n);
        c.payloadLeft -= <u64>n;
        c.payloadRead += <u64>n;
        // Fail fast: bad text is refused at the first bad byte, not at the end.
        if (c.opcode == Opcode.TEXT && !c.utf8.feed(dst, n)) {
          fail(c, s, CloseCode.INVALID_PAYLOAD, "text is not UTF-8");
          return;
        }
      }
      if (c.payloadLeft > 0) return;
      c.inPayload = false;
      if (c.fin) endMessage(c, s);
      continue;
    }

    const h = header;
    const headerLen = readHeader(input.ptr, input.length, h);
    if (headerLen == 0) return;
    if (headerLen < 0) {
      fail(c, s, <u16>(-headerLen), "protocol error");
      return;
    }

    if (isControl(h.opcode)) {
      // At most 125 bytes (readHeader checked): wait until it is all here.
      const len = <i32>h.length;
      if (input.length < headerLen + len) return;
      const payload = input.ptr + <usize>headerLen;
      unmask(payload, payload, len, h.mask, 0);
      control(c, s, h.opcode, payload, len);
      if (c.state == State.Open) input.consume(headerLen + len);
      continue;
    }

    // A data frame starts a message or continues the one in progress.
    if (h.opcode == Opcode.CONTINUATION) {
      if (c.opcode == 0) { fail(c, s, CloseCode.PROTOCOL_ERROR, "continuation without a message"); return; }
    } else if (c.opcode != 0) {
      fail(c, s, CloseCode.PROTOCOL_ERROR, "new message before the last one ended");
      return;
    }
    if (<u64>c.message.length + h.length > <u64>limits.maxMessage) {
      fail(c, s, CloseCode.TOO_BIG, "message too big");
      return;
    }
    if (!reserve(c, s, <i64>h.length)) return;
    input.consume(headerLen);
    if (h.opcode != Opcode.CONTINUATION) {
      c.opcode = h.opcode;
      c.utf8.reset();
    }
    c.inPayload = true;
    c.fin = h.fin;
    c.mask = h.mask;
    c.payloadLeft = h.length;
    c.payloadRead = 0;
  }
}

// Holds room for a data frame's payload in the room's budget: a reader with
// the most queued gives way first; if no one can, the sender is refused.
function reserve(c: Conn, s: Server<Conn>, n: i64): bool {
  while (!room.reserve(n)) {
    const m = room.largestQueue();
    if (m === null || m === c) {
      fail(c, s, CloseCode.TRY_AGAIN_LATER, "server busy");
      return false;
    }
    fail(m, s, CloseCode.POLICY, "server buffer full");
  }
  c.reserved += n;
  return true;
}

function endMessage(c: Conn, s: Server<Conn>): void {
  if (c.opcode == Opcode.TEXT && !c.utf8.complete) {
    fail(c, s, CloseCode.INVALID_PAYLOAD, "text ends inside a character");
    return;
  }
  room.broadcast(c, c.opcode, c.message.ptr, c.message.length, s);
  dropMessage(c);
  enforceLimits(s);
}

function dropMessage(c: Conn): void {
  c.opcode = 0;
  c.message.clear();
  c.inPayload = false;
  room.unreserve(c.reserved);
  c.reserved = 0;
}

function control(c: Conn, s: Server<Conn>, opcode: u8, payload: usize, len: i32): void {
  if (opcode == Opcode.PING) {
    room.sendTo(c, Opcode.PONG, payload, len, s); // the same payload back
    enforceLimits(s);
    return;
  }
  if (opcode != Opcode.CLOSE) return; // an unsolicited pong needs no answer
  if (len == 0) {
    close(c, s, 0, ""); // no code given: none echoed
    return;
  }
  if (len == 1) { fail(c, s, CloseCode.PROTOCOL_ERROR, "close payload of 1 byte"); return; }
  const code = bswap<u16>(load<u16>(payload));
  if (!isValidCloseCode(code)) { fail(c, s, CloseCode.PROTOCOL_ERROR, "invalid close code"); return; }
  if (!isValidUtf8(payload + 2, len - 2)) { fail(c, s, CloseCode.INVALID_PAYLOAD, "close reason is not UTF-8"); return; }
  close(c, s, code, "");
}

// ---- Closing ----------------------------------------------------------------

// Fails the connection (RFC 6455 7.1.7): a close frame saying why, then Closing.
// The reason travels in the close frame; nothing is logged (a hostile
// client must not be able to fill the log).
function fail(c: Conn, s: Server<Conn>, code: u16, reason: string): void {
  close(c, s, code, reason);
}

// Sends a close frame (code 0: none) and enters Closing. The room stops
// sending to c; frames it had not started to receive are dropped.
function close(c: Conn, s: Server<Conn>, code: u16, reason: string): void {
  if (c.state == State.Closing) return;
  c.state = State.Closing;
  room.leave(c);
  room.discard(c);
  dropMessage(c);
  let len = 0;
  if (code != 0) {
    store<u16>(closePayload, bswap<u16>(code));
    const text = String.UTF8.encode(reason);
    len = 2 + min(text.byteLength, MAX_CONTROL_PAYLOAD - 2);
    memory.copy(closePayload + 2, changetype<usize>(text), <usize>(len - 2));
  }
  room.sendTo(c, Opcode.CLOSE, closePayload, len, s);
  s.setTimer(c, limits.closeTimeoutMs);
}

// Evicts the readers the room found too slow, then, while the room holds
// more than its budget, the reader with the most queued.
function enforceLimits(s: Server<Conn>): void {
  if (room.hasEvictions) {
    const slow = room.takeEvictions();
    for (let i = 0; i < slow.length; i++) {
      if (!slow[i].closed) fail(slow[i], s, CloseCode.POLICY, "reader too slow");
    }
  }
  while (room.buffered > limits.maxBuffered) {
    const m = room.largestQueue();
    if (m === null) break;
    fail(m, s, CloseCode.POLICY, "server buffer full");
  }
}

// Sends what is queued for c; in Closing, ends the connection once
// everything (the close frame last) is written.
function service(c: Conn, s: Server<Conn>): void {
  if (c.closed) return;
  room.pump(c, s);
  c.dirty = false; // after: a drain noticed during the pump needs no second visit
  if (c.closed || c.state != State.Closing || c.backlog > 0) return;
  if (c.peerDone) {
    s.drop(c); // both sides are done
  } else if (!c.finSent) {
    c.finSent = true;
    c.stream.shutdown(Shutdown.Send); // the timer bounds the wait for the client's end
  }
}
