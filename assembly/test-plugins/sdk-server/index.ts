// sdk-server: a line protocol on the SDK's Server (assembly/sdk/server.ts)
// whose commands let a test see the Server's buffers and close paths from
// outside, through a real client.
//
// Commands, one per line ("\n"):
//   KEY            -> "key <k>": this connection's key (for PEEK)
//   ECHO <text>    -> "<text>"
//   DATA <bytes>   -> "data <n> <sum>": the bytes' count and their sum mod 2^32
//   BIG <n>        -> n bytes of the pattern (i * 7 + 3) & 255, then "\n"
//   PEEK <k>       -> "peek input <unconsumed> cap <its buffer's capacity> out <pending output>
//                      buf <1 if it has an output buffer> watching <1 if it waits for writable>
//                      handled <lines it handled>", or "peek none"
//   STATS          -> "stats opened <n> closed <n> drained <n> open <n> after-close <n>" (after-close: input
//                     handed to a connection after it called close(), which the Server must never do)
//   QUIT           -> "bye", then the connection closes once its output is sent
//   DROP           -> writes "never" and drops the connection at once (nothing more is sent)
// When the peer ends its side: "end <bytes of the incomplete message>", then close.
//
// Output waiting past 64 KiB pauses reading (ServerOptions.outputHighWater).
//
// Used by test/sdk/server.test.ts.
import { Connection, Context, Handler, Server, ServerOptions, TcpStream, serve } from "../../sdk";
export * from "../../sdk/entry";

class Conn extends Connection {
  handled: i32 = 0;
}

let opened = 0;
let closed = 0;
let drained = 0;
let afterClose = 0;

function sumOf(ptr: usize, n: i32): u32 {
  let sum: u32 = 0;
  for (let i = 0; i < n; i++) sum += <u32>load<u8>(ptr + <usize>i);
  return sum;
}

class Lines extends Handler<Conn> {
  create(key: i32, stream: TcpStream): Conn {
    return new Conn(key, stream);
  }

  onOpen(c: Conn, server: Server<Conn>): void {
    opened++;
  }

  onClose(c: Conn, server: Server<Conn>): void {
    closed++;
  }

  onDrained(c: Conn, server: Server<Conn>): void {
    drained++;
  }

  onEnd(c: Conn, server: Server<Conn>): void {
    c.write("end " + c.input.length.toString() + "\n");
    c.close();
  }

  onData(c: Conn, server: Server<Conn>): void {
    // After QUIT the Server hands this connection no more input: count it if it does.
    if (c.closing) afterClose++;
    let i = c.input.indexOf(10);
    while (i >= 0) {
      c.handled++;
      if (!this.command(c, server, i)) return; // dropped: its input is gone
      if (c.closing) {
        c.input.clear(); // nothing after QUIT counts
        return;
      }
      i = c.input.indexOf(10);
    }
  }

  // Handles the line of `len` bytes at the front of c.input and consumes it. False when c was dropped.
  private command(c: Conn, server: Server<Conn>, len: i32): bool {
    const input = c.input;
    if (len >= 5 && input.toString(0, 5) == "DATA ") {
      c.output.writeString("data ");
      c.output.writeDecimal(<u64>(len - 5));
      c.output.writeByte(32);
      c.output.writeDecimal(<u64>sumOf(input.ptr + 5, len - 5));
      c.output.writeByte(10);
      input.consume(len + 1);
      return true;
    }
    const line = input.toString(0, len);
    input.consume(len + 1);
    if (line == "KEY") {
      c.write("key " + c.key.toString() + "\n");
    } else if (line.startsWith("ECHO ")) {
      c.write(line.substring(5) + "\n");
    } else if (line.startsWith("BIG ")) {
      const n = I32.parseInt(line.substring(4));
      const out = c.output;
      const p = out.reserve(n + 1);
      for (let k = 0; k < n; k++) store<u8>(p + <usize>k, <u8>((k * 7 + 3) & 0xff));
      store<u8>(p + <usize>n, 10);
      out.commit(n + 1);
    } else if (line.startsWith("PEEK ")) {
      const other = server.connections.get(I32.parseInt(line.substring(5)));
      if (other === null) {
        c.write("peek none\n");
      } else {
        c.write("peek input " + other.input.length.toString() + " cap " + other.input.capacity.toString() +
          " out " + other.pending.toString() + " buf " + (other.outBuf !== null ? "1" : "0") +
          " watching " + (other.watchingWrite ? "1" : "0") + " handled " + other.handled.toString() + "\n");
      }
    } else if (line == "STATS") {
      c.write("stats opened " + opened.toString() + " closed " + closed.toString() + " drained " + drained.toString() +
        " open " + server.connections.size.toString() + " after-close " + afterClose.toString() + "\n");
    } else if (line == "QUIT") {
      c.write("bye\n");
      c.close();
    } else if (line == "DROP") {
      c.write("never\n");
      server.drop(c);
      return false;
    } else {
      c.write("unknown " + line + "\n");
    }
    return true;
  }
}

serve((ctx: Context): string | null => {
  const options = new ServerOptions();
  options.outputHighWater = 64 * 1024;
  const server = new Server<Conn>(new Lines(), options);
  const err = server.listen(ctx.listen[0]);
  return err !== null ? err : server.run();
});
