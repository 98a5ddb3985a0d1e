// resp: a key-value server that speaks the Redis protocol (RESP2), so that
// redis-cli, redis-benchmark and Redis client libraries work against it.
//
// Strings only: GET SET MGET MSET INCR INCRBY DECR DECRBY DEL EXISTS EXPIRE
// PEXPIRE TTL PTTL DBSIZE FLUSHALL FLUSHDB, and PING ECHO SELECT QUIT INFO
// COMMAND CONFIG GET for clients and tools. Keys expire lazily and actively,
// as in Redis. Writes are refused with -OOM before the store passes its
// budget (maxmemory, see config.ts), so the instance never reaches its memory
// cap; reads keep working.
//
// The loop (accept, read, write with backpressure, timers) is the SDK's
// Server; this file joins it to the protocol:
//
//   parser.ts        bytes -> requests, incrementally, inline and multibulk
//   commands.ts      requests -> replies (command.ts: the table; introspection.ts: COMMAND, CONFIG, INFO)
//   reply.ts         the RESP2 encoding of replies (integers.ts: Redis's integer rules)
//   store.ts         the keyspace, with exact memory accounting
//   expiry.ts        active expiry (clock.ts: time as commands see it)
//   config.ts        --config settings
//
// Run it:  wasmux run dist/plugins/resp.wasm --listen 127.0.0.1:6379 [--config maxmemory=24mb]

import { Connection, Context, Handler, Server, ServerOptions, Timer, TcpStream, info, nowNanos, serve, warn } from "../../sdk";
import { Clock } from "./clock";
import { Call } from "./command";
import { commandTable, execute } from "./commands";
import { Settings, configError, parseSettings } from "./config";
import { ActiveExpiry } from "./expiry";
import { Parsed, RequestBudget, RequestParser } from "./parser";
import { Store } from "./store";
export * from "../../sdk/entry";

class RespConnection extends Connection {
  readonly parser: RequestParser;
  /** Listed in Resp.ready: its requests run at the end of this loop turn. */
  ready: bool = false;

  constructor(key: i32, stream: TcpStream, settings: Settings, budget: RequestBudget) {
    super(key, stream);
    this.parser = new RequestParser(<i32>settings.maxBulk, <i32>settings.maxRequest, budget);
  }
}

// A timer that belongs to no connection: Server skips its key when it fires,
// and onTick sees that it is no longer armed.
const CRON_KEY: i32 = -1;

// Input waiting past this runs at once rather than at the end of the turn,
// so a client streaming a long pipeline cannot make its input buffer grow
// without bound while the turn lasts.
const RUN_NOW_BYTES: i32 = 256 * 1024;

class Resp extends Handler<RespConnection> {
  private readonly call: Call;
  private readonly expiry: ActiveExpiry;
  private readonly budget: RequestBudget;
  private readonly cron: Timer = new Timer(CRON_KEY);
  private readonly ready: RespConnection[] = [];

  constructor(private readonly settings: Settings, private readonly outputLimit: i32) {
    super();
    const seed = nowNanos();
    const store = new Store(<usize>settings.maxmemory, <u32>(seed ^ (seed >> 32)));
    this.expiry = new ActiveExpiry(settings.hz, seed * 0x9e3779b97f4a7c15);
    this.budget = new RequestBudget(<i64>settings.maxClients);
    this.call = new Call(store, new Clock(), commandTable(), settings);
    // The plugin metric commands_total{command} (a store per command; reported before each wait).
    this.call.table.countCommands();
    this.call.stats.startedAtMs = this.call.clock.now();
  }

  create(key: i32, stream: TcpStream): RespConnection {
    return new RespConnection(key, stream, this.settings, this.budget);
  }

  onOpen(c: RespConnection, server: Server<RespConnection>): void {
    this.call.stats.connectedClients++;
    this.call.stats.totalConnections++;
  }

  // Requests are not run as they are read but at the end of the loop turn
  // (onTick), for every connection that received some, and the replies then
  // leave together, as Redis does (its beforeSleep writes). A client with
  // many connections, like redis-benchmark, then gets a burst of replies per
  // wakeup instead of one, and both sides spend less time going to sleep and
  // waking up; measured, that was the difference between 0.7 and 0.85 of
  // redis-server's throughput.
  onData(c: RespConnection, server: Server<RespConnection>): void {
    if (c.input.length >= RUN_NOW_BYTES) {
      this.call.clock.advance();
      this.serve(c, server);
    } else {
      this.schedule(c);
    }
  }

  // The peer will send nothing more: run what it sent, then close (serve
  // closes once no whole request is left).
  onEnd(c: RespConnection, server: Server<RespConnection>): void {
    this.schedule(c);
  }

  // Replies had piled up past outputLimit and the client has now taken them
  // all: run the requests that were left waiting.
  onDrained(c: RespConnection, server: Server<RespConnection>): void {
    this.schedule(c);
  }

  onClose(c: RespConnection, server: Server<RespConnection>): void {
    this.call.stats.connectedClients--;
    c.parser.release();
  }

  // Under memory pressure a new client is told so as Redis tells one past
  // maxclients, and the clients sending the largest requests are closed
  // with a protocol error (Redis closes a client past its query buffer
  // limit without a word; the error says why).
  refusal(): ArrayBuffer | null {
    return String.UTF8.encode("-ERR max number of clients reached\r\n");
  }

  onShed(c: RespConnection, server: Server<RespConnection>): void {
    c.parser.reset(); // its part of maxmemory-clients goes back
    c.output.writeString("-ERR Protocol error: request too large for the memory left\r\n");
    c.close();
  }

  onTick(nowMs: u64, server: Server<RespConnection>): void {
    const ready = this.ready;
    if (ready.length > 0) {
      this.call.clock.advance();
      // serve() may list a connection again (onDrained): it then runs in this same pass.
      for (let i = 0; i < ready.length; i++) {
        const c = ready[i];
        c.ready = false;
        if (!c.closed) this.serve(c, server);
      }
      ready.length = 0;
    }
    if (!this.cron.armed) {
      // The first cycle runs after the first event: before it the store is empty.
      this.call.clock.advance();
      this.expiry.cycle(this.call.store, this.call.clock);
      server.wheel.schedule(this.cron, nowMs + this.expiry.periodMs);
    }
  }

  private schedule(c: RespConnection): void {
    if (c.ready) return;
    c.ready = true;
    this.ready.push(c);
  }

  // Runs c's requests and sends the replies. When replies pile up past
  // outputLimit (a slow client, large values) it stops running requests
  // until they are sent: at once if the client takes them, else when
  // onDrained says so.
  private serve(c: RespConnection, server: Server<RespConnection>): void {
    while (this.runRequests(c)) {
      server.flush(c);
      if (c.closed || c.pending > 0) return;
    }
    // Also when nothing was written: the input emptied here, after the
    // read, and flush gives its buffer back.
    if (!c.closed) server.flush(c);
  }

  // Runs every whole request in c's input, in order, appending the replies
  // in the same order (pipelining). A partial request stays in the input for
  // the next read. Returns true when it stopped with replies past
  // outputLimit and requests possibly left.
  private runRequests(c: RespConnection): bool {
    const x = this.call;
    const parser = c.parser;
    while (!c.closing) {
      if (c.pending > this.outputLimit) return true;
      const r = parser.next(c.input);
      if (r == Parsed.Incomplete) {
        if (c.peerDone) c.close(); // nothing more can complete it
        break;
      }
      if (r == Parsed.ProtocolError) {
        parser.writeError(c.output);
        c.close();
        break;
      }
      if (r == Parsed.TooBig) {
        warn("resp: closing a client whose request passed " + parser.tooBig);
        c.close();
        break;
      }
      if (r == Parsed.Command) {
        x.args = parser.args;
        x.out = c.output;
        x.closeAfterReply = false;
        execute(x);
        if (x.closeAfterReply) c.close();
      }
      c.input.consume(parser.length);
      parser.reset();
    }
    // After QUIT or a protocol error Redis reads nothing more from the
    // client: what it sent after is dropped, the replies before go out.
    if (c.closing) {
      c.input.clear();
      parser.reset();
    }
    return false;
  }
}

function main(ctx: Context): string | null {
  if (ctx.listen.length == 0) return "resp needs a --listen address";
  const settings = parseSettings(ctx.config);
  if (settings === null) return "resp: bad --config: " + configError;
  const options = new ServerOptions();
  // Requests wait while a client has this much unsent (the server stops
  // reading from it at the same mark).
  const server = new Server<RespConnection>(new Resp(settings, options.outputHighWater), options);
  for (let i = 0; i < ctx.listen.length; i++) {
    const err = server.listen(ctx.listen[i]);
    if (err !== null) return err;
  }
  info("resp: maxmemory " + settings.maxmemory.toString() + " bytes, hz " + settings.hz.toString() +
    ", proto-max-bulk-len " + settings.maxBulk.toString() + ", client-query-buffer-limit " + settings.maxRequest.toString() +
    ", maxmemory-clients " + settings.maxClients.toString());
  return server.run();
}

serve(main);
