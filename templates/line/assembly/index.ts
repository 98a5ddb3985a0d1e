// {{name}}: a line protocol served by wasmux.
//
// A client sends commands, one per line; each line gets one reply line:
//
//   PING          ->  PONG
//   ECHO <text>   ->  <text>
//   COUNT         ->  how many commands this connection has sent
//   QUIT          ->  BYE, then the server closes the connection
//   anything else ->  ERR unknown command "<name>"
//
// Lines end with "\n" (a "\r" before it is dropped, so "\r\n" works too).
// A line longer than MAX_LINE bytes gets "ERR line too long" and the
// connection is closed: a client that never sends "\n" cannot make the
// plugin buffer without end.
//
//   npm run build && npm start
//   printf 'PING\nECHO hello\nQUIT\n' | nc 127.0.0.1 7000
//
// The SDK's Server runs the event loop: it accepts connections, reads what
// arrives into each connection's `input`, calls onData, and sends what
// onData wrote to `output` (waiting for a slow reader without blocking the
// others). This file is only the protocol.

import { Connection, Context, Handler, Server, TcpStream, serve } from "wasmux";
// The functions the host calls (run, cabi_realloc): every plugin re-exports them.
export * from "wasmux/entry";

const MAX_LINE: i32 = 4096;
const LF: u8 = 10;
const CR: u8 = 13;

/** One connection's state: the Server's buffers, plus what this protocol counts. */
class LineConnection extends Connection {
  commands: i32 = 0;
}

class LineProtocol extends Handler<LineConnection> {
  create(key: i32, stream: TcpStream): LineConnection {
    return new LineConnection(key, stream);
  }

  // New bytes are in c.input. Handle every complete line, consume it, and
  // leave a partial line where it is: the next read appends to it.
  onData(c: LineConnection, server: Server<LineConnection>): void {
    let end = c.input.indexOf(LF);
    while (end >= 0) {
      let len = end;
      if (len > 0 && c.input.at(len - 1) == CR) len--;
      const line = c.input.toString(0, len);
      c.input.consume(end + 1);
      this.command(c, line);
      if (c.closing) return; // QUIT: the rest of the input is not answered
      end = c.input.indexOf(LF);
    }
    if (c.input.length > MAX_LINE) {
      c.write("ERR line too long\n");
      c.input.clear();
      c.close(); // sends what is queued, then closes
    }
  }

  private command(c: LineConnection, line: string): void {
    c.commands++;
    const space = line.indexOf(" ");
    const name = (space < 0 ? line : line.substring(0, space)).toUpperCase();
    const arg = space < 0 ? "" : line.substring(space + 1);
    if (name == "PING") {
      c.write("PONG\n");
    } else if (name == "ECHO") {
      c.write(arg + "\n");
    } else if (name == "COUNT") {
      c.write(c.commands.toString() + "\n");
    } else if (name == "QUIT") {
      c.write("BYE\n");
      c.close();
    } else {
      c.write("ERR unknown command \"" + name + "\"\n");
    }
  }
}

// run(): called once per instance, with the addresses given to `wasmux run
// --listen` (the only ones the host lets this plugin listen on). It returns
// only on error; the host stops the instance by waking it out of its wait.
serve((ctx: Context): string | null => {
  if (ctx.listen.length == 0) return "{{name}} needs a --listen address";
  const server = new Server<LineConnection>(new LineProtocol());
  for (let i = 0; i < ctx.listen.length; i++) {
    const err = server.listen(ctx.listen[i]);
    if (err !== null) return err;
  }
  return server.run();
});
