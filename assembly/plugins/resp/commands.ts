// The commands, and how a request becomes a reply.
//
// Behaviour follows Redis 7.0 to the byte, errors included, because clients
// and tools match on them: the order of checks (unknown command, arity, out
// of memory, then the command's own syntax), the option grammar of SET and
// EXPIRE, and the integer rules are Redis's. test/resp/compat.test.ts
// compares them with the replies of a real redis-server.

import { ByteBuffer } from "../../sdk";
import { Call, Command, CommandTable } from "./command";
import { formatInteger, parseInteger, parsedInteger } from "./integers";
import {
  commandAll, commandCount, commandDocs, commandHelp, commandInfo, commandList, configGet, configHelp, info,
} from "./introspection";
import { replyArray, replyBulk, replyError, replyInteger, replyNil, replyOk, replyStatus } from "./reply";
import { PERSISTENT, Store, footprint } from "./store";

const OOM_ERROR = "OOM command not allowed when used memory > 'maxmemory'.";
const SYNTAX_ERROR = "ERR syntax error";
const NOT_INTEGER = "ERR value is not an integer or out of range";

/** Runs the request in x.args, writing its reply to x.out. */
export function execute(x: Call): void {
  const a = x.args;
  let c = x.table.find(a.ptr(0), a.len(0));
  if (c === null) { unknownCommand(x); return; }
  const counted = c.counted;
  if (c.subcommands.length > 0 && a.count >= 2) {
    const sub = c.findSub(a.ptr(1), a.len(1));
    if (sub === null) { unknownSubcommand(x, c); return; }
    c = sub;
  }
  if (!c.accepts(a.count)) { arityError(x, c); return; }
  if (c.denyOom && !x.store.wouldFit(writeCost(x))) { replyError(x.out, OOM_ERROR); return; }
  x.stats.commandsProcessed++;
  if (counted !== null) counted.inc();
  c.run(x);
}

/** Builds the table of every command this plugin answers. */
export function commandTable(): CommandTable {
  const t = new CommandTable();
  t.add(new Command("get", 2, "readonly fast", get).keys(1, 1, 1, "RO access").acl("@read @string @fast")
    .doc("string", "1.0.0", "Get the value of a key", "O(1)"));
  t.add(new Command("set", -3, "write denyoom", set)
    .keys(1, 1, 1, "RW access update variable_flags", "RW and ACCESS due to the optional `GET` argument").acl("@write @string @slow")
    .doc("string", "1.0.0", "Set the string value of a key", "O(1)"));
  t.add(new Command("mget", -2, "readonly fast", mget).keys(1, -1, 1, "RO access").acl("@read @string @fast")
    .hints("request_policy:multi_shard").doc("string", "1.0.0", "Get the values of all the given keys", "O(N) where N is the number of keys to retrieve."));
  t.add(new Command("mset", -3, "write denyoom", mset).keys(1, -1, 2, "OW update").acl("@write @string @slow")
    .hints("request_policy:multi_shard response_policy:all_succeeded").doc("string", "1.0.1", "Set multiple keys to multiple values", "O(N) where N is the number of keys to set."));
  t.add(new Command("incr", 2, "write denyoom fast", incr).keys(1, 1, 1, "RW access update").acl("@write @string @fast")
    .doc("string", "1.0.0", "Increment the integer value of a key by one", "O(1)"));
  t.add(new Command("incrby", 3, "write denyoom fast", incrby).keys(1, 1, 1, "RW access update").acl("@write @string @fast")
    .doc("string", "1.0.0", "Increment the integer value of a key by the given amount", "O(1)"));
  t.add(new Command("decr", 2, "write denyoom fast", decr).keys(1, 1, 1, "RW access update").acl("@write @string @fast")
    .doc("string", "1.0.0", "Decrement the integer value of a key by one", "O(1)"));
  t.add(new Command("decrby", 3, "write denyoom fast", decrby).keys(1, 1, 1, "RW access update").acl("@write @string @fast")
    .doc("string", "1.0.0", "Decrement the integer value of a key by the given number", "O(1)"));
  t.add(new Command("del", -2, "write", del).keys(1, -1, 1, "RM delete").acl("@keyspace @write @slow")
    .hints("request_policy:multi_shard response_policy:agg_sum").doc("generic", "1.0.0", "Delete a key", "O(N) where N is the number of keys that will be removed."));
  t.add(new Command("exists", -2, "readonly fast", exists).keys(1, -1, 1, "RO").acl("@keyspace @read @fast")
    .hints("request_policy:multi_shard response_policy:agg_sum").doc("generic", "1.0.0", "Determine if a key exists", "O(N) where N is the number of keys to check."));
  t.add(new Command("expire", -3, "write fast", expire).keys(1, 1, 1, "RW update").acl("@keyspace @write @fast")
    .doc("generic", "1.0.0", "Set a key's time to live in seconds", "O(1)"));
  t.add(new Command("pexpire", -3, "write fast", pexpire).keys(1, 1, 1, "RW update").acl("@keyspace @write @fast")
    .doc("generic", "2.6.0", "Set a key's time to live in milliseconds", "O(1)"));
  t.add(new Command("ttl", 2, "readonly fast", ttl).keys(1, 1, 1, "RO access").acl("@keyspace @read @fast")
    .hints("nondeterministic_output").doc("generic", "1.0.0", "Get the time to live for a key in seconds", "O(1)"));
  t.add(new Command("pttl", 2, "readonly fast", pttl).keys(1, 1, 1, "RO access").acl("@keyspace @read @fast")
    .hints("nondeterministic_output").doc("generic", "2.6.0", "Get the time to live for a key in milliseconds", "O(1)"));
  t.add(new Command("dbsize", 1, "readonly fast", dbsize).acl("@keyspace @read @fast")
    .hints("request_policy:all_shards response_policy:agg_sum").doc("server", "1.0.0", "Return the number of keys in the selected database", "O(1)"));
  t.add(new Command("flushall", -1, "write", flush).acl("@keyspace @write @slow @dangerous")
    .hints("request_policy:all_shards response_policy:all_succeeded").doc("server", "1.0.0", "Remove all keys from all databases", "O(N) where N is the total number of keys in all databases"));
  t.add(new Command("flushdb", -1, "write", flush).acl("@keyspace @write @slow @dangerous")
    .hints("request_policy:all_shards response_policy:all_succeeded").doc("server", "1.0.0", "Remove all keys from the current database", "O(N) where N is the number of keys in the selected database"));
  t.add(new Command("ping", -1, "fast", ping).acl("@fast @connection")
    .hints("request_policy:all_shards response_policy:all_succeeded").doc("connection", "1.0.0", "Ping the server", "O(1)"));
  t.add(new Command("echo", 2, "loading stale fast", echo).acl("@fast @connection")
    .doc("connection", "1.0.0", "Echo the given string", "O(1)"));
  t.add(new Command("select", 2, "loading stale fast", select).acl("@fast @connection")
    .doc("connection", "1.0.0", "Change the selected database for the current connection", "O(1)"));
  t.add(new Command("quit", -1, "noscript loading stale fast no_auth allow_busy", quit).acl("@fast @connection")
    .doc("connection", "1.0.0", "Close the connection", "O(1)"));
  t.add(new Command("info", -1, "loading stale", info).acl("@slow @dangerous")
    .hints("nondeterministic_output request_policy:all_shards response_policy:special")
    .doc("server", "1.0.0", "Get information and statistics about the server", "O(1)"));
  t.add(new Command("command", -1, "loading stale", commandAll).acl("@slow @connection")
    .hints("nondeterministic_output_order").doc("server", "2.8.13", "Get array of Redis command details", "O(N) where N is the total number of Redis commands")
    .sub(new Command("count", 2, "loading stale", commandCount).acl("@slow @connection")
      .doc("server", "2.8.13", "Get total number of Redis commands", "O(1)"))
    .sub(new Command("docs", -2, "loading stale", commandDocs).acl("@slow @connection")
      .hints("nondeterministic_output_order").doc("server", "7.0.0", "Get array of specific Redis command documentation", "O(N) where N is the number of commands to look up"))
    .sub(new Command("info", -2, "loading stale", commandInfo).acl("@slow @connection")
      .hints("nondeterministic_output_order").doc("server", "2.8.13", "Get array of specific Redis command details, or all when no argument is given.", "O(N) where N is the number of commands to look up"))
    .sub(new Command("list", -2, "loading stale", commandList).acl("@slow @connection")
      .hints("nondeterministic_output_order").doc("server", "7.0.0", "Get an array of Redis command names", "O(N) where N is the total number of Redis commands"))
    .sub(new Command("help", 2, "loading stale", commandHelp).acl("@slow @connection")
      .doc("server", "5.0.0", "Show helpful text about the different subcommands", "O(1)")));
  // CONFIG's own implementation is never reached: without a subcommand its
  // arity (-2) refuses it first.
  t.add(new Command("config", -2, "", configHelp).acl("@slow")
    .doc("server", "2.0.0", "A container for server configuration commands", "Depends on subcommand.")
    .sub(new Command("get", -3, "admin noscript loading stale", configGet).acl("@admin @slow @dangerous")
      .doc("server", "2.0.0", "Get the values of configuration parameters", "O(N) when N is the number of configuration parameters provided"))
    .sub(new Command("help", 2, "loading stale", configHelp).acl("@slow")
      .doc("server", "5.0.0", "Show helpful text about the different subcommands", "O(1)")));
  return t;
}

// ---- strings ----------------------------------------------------------------

function get(x: Call): void {
  const e = x.store.lookup(x.args.ptr(1), x.args.len(1), x.clock);
  if (e === null) replyNil(x.out);
  else replyBulk(x.out, e.value, e.valueLen);
}

// SET's options, as bits.
const NX = 1;
const XX = 2;
const GET = 4;
const KEEPTTL = 8;
const EX = 16;
const PX = 32;
const EXAT = 64;
const PXAT = 128;
const EXPIRES = EX | PX | EXAT | PXAT;

// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT unix-s | PXAT unix-ms | KEEPTTL]
function set(x: Call): void {
  const a = x.args;
  let flags = 0;
  let expireArg = -1;
  // Redis's grammar: an option conflicting with one already seen, or an
  // expiry without its number, is a syntax error. Repeating EX (or PX...)
  // is not: the last one counts.
  for (let j = 3; j < a.count; j++) {
    const hasNext = j < a.count - 1;
    if (a.is(j, "nx") && (flags & XX) == 0) {
      flags |= NX;
    } else if (a.is(j, "xx") && (flags & NX) == 0) {
      flags |= XX;
    } else if (a.is(j, "get")) {
      flags |= GET;
    } else if (a.is(j, "keepttl") && (flags & EXPIRES) == 0) {
      flags |= KEEPTTL;
    } else if (a.is(j, "ex") && (flags & (KEEPTTL | EXPIRES & ~EX)) == 0 && hasNext) {
      flags |= EX;
      expireArg = ++j;
    } else if (a.is(j, "px") && (flags & (KEEPTTL | EXPIRES & ~PX)) == 0 && hasNext) {
      flags |= PX;
      expireArg = ++j;
    } else if (a.is(j, "exat") && (flags & (KEEPTTL | EXPIRES & ~EXAT)) == 0 && hasNext) {
      flags |= EXAT;
      expireArg = ++j;
    } else if (a.is(j, "pxat") && (flags & (KEEPTTL | EXPIRES & ~PXAT)) == 0 && hasNext) {
      flags |= PXAT;
      expireArg = ++j;
    } else {
      replyError(x.out, SYNTAX_ERROR);
      return;
    }
  }

  let deadline = PERSISTENT;
  if (expireArg >= 0) {
    deadline = setDeadline(x, expireArg, flags);
    if (deadline == PERSISTENT) return; // the error is written
  }

  const e = x.store.lookup(a.ptr(1), a.len(1), x.clock);
  if ((flags & GET) != 0) {
    if (e === null) replyNil(x.out);
    else replyBulk(x.out, e.value, e.valueLen);
  }
  if (((flags & NX) != 0 && e !== null) || ((flags & XX) != 0 && e === null)) {
    if ((flags & GET) == 0) replyNil(x.out);
    return;
  }
  const entry = e !== null ? e : x.store.insert(a.ptr(1), a.len(1));
  x.store.setValue(entry, a.ptr(2), a.len(2));
  if (deadline != PERSISTENT) x.store.setExpiry(entry, deadline);
  else if ((flags & KEEPTTL) == 0) x.store.setExpiry(entry, PERSISTENT);
  if ((flags & GET) == 0) replyOk(x.out);
}

// SET's EX/PX/EXAT/PXAT argument as a monotonic deadline, or PERSISTENT
// after writing the error. The checks are Redis's (getExpireMillisecondsOrReply),
// overflow included, so the same numbers are refused.
function setDeadline(x: Call, arg: i32, flags: i32): i64 {
  if (!parseInteger(x.args.ptr(arg), x.args.len(arg))) {
    replyError(x.out, NOT_INTEGER);
    return PERSISTENT;
  }
  let ms = parsedInteger;
  const seconds = (flags & (EX | EXAT)) != 0;
  if (ms <= 0 || (seconds && ms > I64.MAX_VALUE / 1000)) {
    invalidExpireTime(x, "set");
    return PERSISTENT;
  }
  if (seconds) ms *= 1000;
  if ((flags & (EX | PX)) != 0) {
    // Redis adds the Unix time and refuses what overflows. Only absurd
    // values can; only they pay for reading the wall clock.
    if (ms > (1 << 60) && ms > I64.MAX_VALUE - x.clock.unixNow()) {
      invalidExpireTime(x, "set");
      return PERSISTENT;
    }
    const now = x.clock.now();
    return ms > I64.MAX_VALUE - now ? I64.MAX_VALUE : now + ms;
  }
  return x.clock.deadlineAt(ms);
}

function mget(x: Call): void {
  const a = x.args;
  replyArray(x.out, a.count - 1);
  for (let i = 1; i < a.count; i++) {
    const e = x.store.lookup(a.ptr(i), a.len(i), x.clock);
    if (e === null) replyNil(x.out);
    else replyBulk(x.out, e.value, e.valueLen);
  }
}

function mset(x: Call): void {
  const a = x.args;
  if (a.count % 2 == 0) { arityError(x, x.table.find(a.ptr(0), a.len(0))!); return; }
  for (let i = 1; i < a.count; i += 2) {
    let e = x.store.lookup(a.ptr(i), a.len(i), x.clock);
    if (e === null) e = x.store.insert(a.ptr(i), a.len(i));
    x.store.setValue(e, a.ptr(i + 1), a.len(i + 1));
    x.store.setExpiry(e, PERSISTENT);
  }
  replyOk(x.out);
}

function incr(x: Call): void { incrementBy(x, 1); }
function decr(x: Call): void { incrementBy(x, -1); }

function incrby(x: Call): void {
  if (!parseInteger(x.args.ptr(2), x.args.len(2))) { replyError(x.out, NOT_INTEGER); return; }
  incrementBy(x, parsedInteger);
}

function decrby(x: Call): void {
  if (!parseInteger(x.args.ptr(2), x.args.len(2))) { replyError(x.out, NOT_INTEGER); return; }
  if (parsedInteger == I64.MIN_VALUE) { replyError(x.out, "ERR decrement would overflow"); return; }
  incrementBy(x, -parsedInteger);
}

// Digits of a number being written back (at most 20).
const DIGITS: usize = memory.data(24);

// The value is kept as its decimal text (what GET returns) and parsed on
// each increment; the deadline, if any, is kept, as in Redis.
function incrementBy(x: Call, by: i64): void {
  const a = x.args;
  let e = x.store.lookup(a.ptr(1), a.len(1), x.clock);
  let value: i64 = 0;
  if (e !== null) {
    if (!parseInteger(e.value, e.valueLen)) { replyError(x.out, NOT_INTEGER); return; }
    value = parsedInteger;
  }
  if ((by < 0 && value < 0 && by < I64.MIN_VALUE - value) || (by > 0 && value > 0 && by > I64.MAX_VALUE - value)) {
    replyError(x.out, "ERR increment or decrement would overflow");
    return;
  }
  value += by;
  if (e === null) e = x.store.insert(a.ptr(1), a.len(1));
  x.store.setValue(e, DIGITS, formatInteger(DIGITS, value));
  replyInteger(x.out, value);
}

// ---- keys -----------------------------------------------------------------

function del(x: Call): void {
  const a = x.args;
  let n = 0;
  for (let i = 1; i < a.count; i++) {
    const e = x.store.lookup(a.ptr(i), a.len(i), x.clock);
    if (e !== null) {
      x.store.remove(e);
      n++;
    }
  }
  replyInteger(x.out, n);
}

// A key named twice counts twice, as in Redis.
function exists(x: Call): void {
  const a = x.args;
  let n = 0;
  for (let i = 1; i < a.count; i++) {
    if (x.store.lookup(a.ptr(i), a.len(i), x.clock) !== null) n++;
  }
  replyInteger(x.out, n);
}

function expire(x: Call): void { setTimeToLive(x, 1000, "expire"); }
function pexpire(x: Call): void { setTimeToLive(x, 1, "pexpire"); }

// EXPIRE's condition options.
const IF_NONE = 1; // NX: only if the key has no deadline
const IF_SOME = 2; // XX: only if it has one
const IF_LATER = 4; // GT: only if the new deadline is later
const IF_SOONER = 8; // LT: only if it is sooner (no deadline counts as infinitely late)

// EXPIRE / PEXPIRE key time [NX | XX | GT | LT]. Redis's expireGenericCommand:
// options first, then the number, then overflow, then the key; a deadline
// already past deletes the key.
function setTimeToLive(x: Call, unitMs: i64, name: string): void {
  const a = x.args;
  let flags = 0;
  for (let j = 3; j < a.count; j++) {
    if (a.is(j, "nx")) flags |= IF_NONE;
    else if (a.is(j, "xx")) flags |= IF_SOME;
    else if (a.is(j, "gt")) flags |= IF_LATER;
    else if (a.is(j, "lt")) flags |= IF_SOONER;
    else {
      writeErrorWithArg(x.out, "ERR Unsupported option ", a.ptr(j), a.len(j), "");
      return;
    }
  }
  if ((flags & IF_NONE) != 0 && (flags & (IF_SOME | IF_LATER | IF_SOONER)) != 0) {
    replyError(x.out, "ERR NX and XX, GT or LT options at the same time are not compatible");
    return;
  }
  if ((flags & IF_LATER) != 0 && (flags & IF_SOONER) != 0) {
    replyError(x.out, "ERR GT and LT options at the same time are not compatible");
    return;
  }
  if (!parseInteger(a.ptr(2), a.len(2))) { replyError(x.out, NOT_INTEGER); return; }
  let when = parsedInteger;
  if (when > I64.MAX_VALUE / unitMs || when < I64.MIN_VALUE / unitMs) { invalidExpireTime(x, name); return; }
  when *= unitMs;
  // Deadlines are compared as Unix milliseconds, as Redis stores them.
  const base = x.clock.unixNow();
  if (when > I64.MAX_VALUE - base) { invalidExpireTime(x, name); return; }
  when += base;

  const e = x.store.lookup(a.ptr(1), a.len(1), x.clock);
  if (e === null) { replyInteger(x.out, 0); return; }
  if (flags != 0) {
    const has = e.expiresAt != PERSISTENT;
    const left = has ? x.clock.remaining(e.expiresAt) : 0;
    const current = !has ? -1 : left > I64.MAX_VALUE - base ? I64.MAX_VALUE : base + left;
    if ((flags & IF_NONE) != 0 && has) { replyInteger(x.out, 0); return; }
    if ((flags & IF_SOME) != 0 && !has) { replyInteger(x.out, 0); return; }
    if ((flags & IF_LATER) != 0 && (!has || when <= current)) { replyInteger(x.out, 0); return; }
    if ((flags & IF_SOONER) != 0 && has && when >= current) { replyInteger(x.out, 0); return; }
  }
  if (when <= base) x.store.remove(e);
  else x.store.setExpiry(e, x.clock.deadlineAt(when));
  replyInteger(x.out, 1);
}

function ttl(x: Call): void { timeToLive(x, false); }
function pttl(x: Call): void { timeToLive(x, true); }

// -2: no such key; -1: no deadline; else the time left (seconds rounded to nearest).
function timeToLive(x: Call, inMs: bool): void {
  const e = x.store.lookup(x.args.ptr(1), x.args.len(1), x.clock);
  if (e === null) { replyInteger(x.out, -2); return; }
  if (e.expiresAt == PERSISTENT) { replyInteger(x.out, -1); return; }
  const left = x.clock.remaining(e.expiresAt);
  replyInteger(x.out, inMs ? left : (left + 500) / 1000);
}

// ---- server and connection --------------------------------------------------

// Counts keys not yet deleted, expired ones included, like Redis's DBSIZE.
function dbsize(x: Call): void {
  replyInteger(x.out, x.store.count);
}

// FLUSHALL / FLUSHDB [ASYNC | SYNC]: both are synchronous here.
function flush(x: Call): void {
  const a = x.args;
  if (a.count > 2 || (a.count == 2 && !a.is(1, "async") && !a.is(1, "sync"))) {
    replyError(x.out, SYNTAX_ERROR);
    return;
  }
  x.store.clear();
  replyOk(x.out);
}

function ping(x: Call): void {
  const a = x.args;
  if (a.count > 2) { arityError(x, x.table.find(a.ptr(0), a.len(0))!); return; }
  if (a.count == 2) replyBulk(x.out, a.ptr(1), a.len(1));
  else replyStatus(x.out, "PONG");
}

function echo(x: Call): void {
  replyBulk(x.out, x.args.ptr(1), x.args.len(1));
}

// One database, number 0.
function select(x: Call): void {
  if (!parseInteger(x.args.ptr(1), x.args.len(1))) { replyError(x.out, NOT_INTEGER); return; }
  if (parsedInteger > I32.MAX_VALUE || parsedInteger < I32.MIN_VALUE) {
    replyError(x.out, "ERR value is out of range, value must between -2147483648 and 2147483647");
    return;
  }
  if (parsedInteger != 0) replyError(x.out, "ERR DB index is out of range");
  else replyOk(x.out);
}

function quit(x: Call): void {
  replyOk(x.out);
  x.closeAfterReply = true;
}

// ---- errors -------------------------------------------------------------------

function arityError(x: Call, c: Command): void {
  replyError(x.out, "ERR wrong number of arguments for '" + c.fullName + "' command");
}

function invalidExpireTime(x: Call, name: string): void {
  replyError(x.out, "ERR invalid expire time in '" + name + "' command");
}

// Echoing a client's bytes into an error follows Redis's printf: an argument
// is a C string (it ends at a NUL byte) cut to `limit` bytes, and CR and LF
// become spaces so the reply stays one line.
const ARG_LIMIT: i32 = 128;

// -ERR unknown command 'FOO', with args beginning with: 'a' 'b'
// (the arguments are quoted while the list is under 128 bytes long).
function unknownCommand(x: Call): void {
  const a = x.args;
  const out = x.out;
  out.writeString("-ERR unknown command '");
  writeClientBytes(out, a.ptr(0), a.len(0), ARG_LIMIT);
  out.writeString("', with args beginning with: ");
  let listed = 0;
  for (let i = 1; i < a.count && listed < ARG_LIMIT; i++) {
    out.writeByte(39);
    listed += writeClientBytes(out, a.ptr(i), a.len(i), ARG_LIMIT - listed) + 3;
    out.writeString("' ");
  }
  out.writeString("\r\n");
}

// -ERR unknown subcommand 'foo'. Try CONFIG HELP.
function unknownSubcommand(x: Call, c: Command): void {
  x.out.writeString("-ERR unknown subcommand '");
  writeClientBytes(x.out, x.args.ptr(1), x.args.len(1), ARG_LIMIT);
  x.out.writeString("'. Try " + c.name.toUpperCase() + " HELP.\r\n");
}

function writeErrorWithArg(out: ByteBuffer, before: string, p: usize, len: i32, after: string): void {
  out.writeByte(45); // '-'
  out.writeString(before);
  writeClientBytes(out, p, len, len);
  out.writeString(after);
  out.writeString("\r\n");
}

// Writes at most `limit` bytes of a client's argument, up to its first NUL,
// CR and LF as spaces; returns how many.
function writeClientBytes(out: ByteBuffer, p: usize, len: i32, limit: i32): i32 {
  const n = min(len, limit);
  let i = 0;
  for (; i < n; i++) {
    const b = load<u8>(p + <usize>i);
    if (b == 0) break;
    out.writeByte(b == 13 || b == 10 ? 32 : b);
  }
  return i;
}

// ---- memory -------------------------------------------------------------------

// What a write may add to the store, at most: every argument after the
// command name stored as a new key, plus a number's digits (INCR), plus the
// store's own growth for that many keys. Redis checks used memory against
// maxmemory only before a write and may end up past it; here the budget is
// derived from a hard cap, so the check is made against what the write
// could bring: a write at least as large as one refused is refused too, a
// smaller one may still fit.
function writeCost(x: Call): usize {
  const a = x.args;
  let cost: usize = footprint(24);
  for (let i = 1; i < a.count; i++) cost += Store.cost(a.len(i), 0);
  return cost + x.store.growthCost(a.count - 1);
}
