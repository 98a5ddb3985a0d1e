// COMMAND and CONFIG: what clients ask a server about itself before they
// start. redis-cli fetches COMMAND DOCS for its hints; redis-benchmark asks
// CONFIG GET save and appendonly; client libraries read COMMAND INFO for key
// positions. The replies have Redis 7's shapes (RESP2 flattens its maps into
// arrays of name, value pairs), drawn from the command table, so they
// describe exactly the commands this plugin has.

import { ByteBuffer } from "../../sdk";
import { Call, Command } from "./command";
import { replyArray, replyBulkString, replyError, replyInteger, replyNil, replyStatus } from "./reply";

/** COMMAND with no subcommand: every command's details. */
export function commandAll(x: Call): void {
  const all = x.table.all;
  replyArray(x.out, all.length);
  for (let i = 0; i < all.length; i++) writeInfo(x.out, all[i]);
}

export function commandCount(x: Call): void {
  replyInteger(x.out, x.table.all.length);
}

/** COMMAND INFO [name ...]: details of the named commands (nil for unknown ones), or of all. */
export function commandInfo(x: Call): void {
  if (x.args.count == 2) { commandAll(x); return; }
  replyArray(x.out, x.args.count - 2);
  for (let i = 2; i < x.args.count; i++) {
    const c = x.table.findFull(x.args.ptr(i), x.args.len(i));
    if (c === null) replyNil(x.out);
    else writeInfo(x.out, c);
  }
}

/** COMMAND DOCS [name ...]: name, docs pairs for the named commands (unknown ones left out), or all. */
export function commandDocs(x: Call): void {
  const found = new Array<Command>();
  if (x.args.count == 2) {
    for (let i = 0; i < x.table.all.length; i++) found.push(x.table.all[i]);
  } else {
    for (let i = 2; i < x.args.count; i++) {
      const c = x.table.findFull(x.args.ptr(i), x.args.len(i));
      if (c !== null) found.push(c);
    }
  }
  replyArray(x.out, found.length * 2);
  for (let i = 0; i < found.length; i++) {
    replyBulkString(x.out, found[i].fullName);
    writeDocs(x.out, found[i]);
  }
}

/** COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: names, subcommands included. */
export function commandList(x: Call): void {
  const a = x.args;
  let filter = "";
  let arg = "";
  for (let i = 2; i < a.count; i++) {
    if (a.is(i, "filterby") && a.count - 1 - i == 2) {
      if (a.is(i + 1, "module")) filter = "module";
      else if (a.is(i + 1, "aclcat")) filter = "aclcat";
      else if (a.is(i + 1, "pattern")) filter = "pattern";
      else { replyError(x.out, "ERR syntax error"); return; }
      arg = a.text(i + 2);
      i += 2;
    } else {
      replyError(x.out, "ERR syntax error");
      return;
    }
  }
  const names = new Array<string>();
  for (let i = 0; i < x.table.all.length; i++) {
    const c = x.table.all[i];
    if (listed(c, filter, arg)) names.push(c.fullName);
    for (let j = 0; j < c.subcommands.length; j++) {
      if (listed(c.subcommands[j], filter, arg)) names.push(c.subcommands[j].fullName);
    }
  }
  replyArray(x.out, names.length);
  for (let i = 0; i < names.length; i++) replyBulkString(x.out, names[i]);
}

function listed(c: Command, filter: string, arg: string): bool {
  if (filter == "") return true;
  if (filter == "module") return false; // no modules here
  if (filter == "aclcat") return c.categories.includes("@" + arg.toLowerCase());
  return globMatch(arg, c.fullName);
}

export function commandHelp(x: Call): void {
  helpLines(x.out, "COMMAND", [
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
  ]);
}

/** CONFIG GET pattern [pattern ...]: name, value pairs of the parameters that match (glob, any case). */
export function configGet(x: Call): void {
  const params = x.settings.parameters();
  const picked = new Array<bool>(params.length / 2);
  const order = new Array<i32>();
  for (let i = 2; i < x.args.count; i++) {
    const pattern = x.args.text(i);
    for (let p = 0; p < picked.length; p++) {
      if (!picked[p] && globMatch(pattern, params[p * 2])) {
        picked[p] = true;
        order.push(p);
      }
    }
  }
  replyArray(x.out, order.length * 2);
  for (let i = 0; i < order.length; i++) {
    replyBulkString(x.out, params[order[i] * 2]);
    replyBulkString(x.out, params[order[i] * 2 + 1]);
  }
}

export function configHelp(x: Call): void {
  helpLines(x.out, "CONFIG", [
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
  ]);
}

/**
 * INFO [section ...]: the sections Redis has that mean something here,
 * in its "name:value" lines. `wasm_memory` is this plugin's own: the size of
 * the instance's linear memory, the figure the memory cap applies to.
 */
export function info(x: Call): void {
  const a = x.args;
  const all = a.count == 1 || a.is(1, "all") || a.is(1, "everything") || a.is(1, "default");
  const st = x.stats;
  let text = "";
  for (let s = 0; s < SECTIONS.length; s++) {
    const name = SECTIONS[s];
    let wanted = all;
    for (let i = 1; i < a.count && !wanted; i++) wanted = a.is(i, name);
    if (!wanted) continue;
    if (text.length > 0) text += "\r\n";
    if (name == "server") {
      text += "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\nserver_name:wasmux-resp\r\n" +
        "uptime_in_seconds:" + ((x.clock.now() - st.startedAtMs) / 1000).toString() + "\r\n" +
        "hz:" + x.settings.hz.toString() + "\r\n";
    } else if (name == "clients") {
      text += "# Clients\r\nconnected_clients:" + st.connectedClients.toString() + "\r\n";
    } else if (name == "memory") {
      text += "# Memory\r\nused_memory:" + x.store.used.toString() + "\r\n" +
        "maxmemory:" + x.settings.maxmemory.toString() + "\r\n" +
        "maxmemory_policy:noeviction\r\n" +
        "wasm_memory:" + (<u64>memory.size() << 16).toString() + "\r\n";
    } else if (name == "stats") {
      text += "# Stats\r\ntotal_connections_received:" + st.totalConnections.toString() + "\r\n" +
        "total_commands_processed:" + st.commandsProcessed.toString() + "\r\n" +
        "expired_keys:" + x.store.expiredKeys.toString() + "\r\n";
    } else if (name == "keyspace") {
      text += "# Keyspace\r\n";
      if (x.store.count > 0) {
        text += "db0:keys=" + x.store.count.toString() + ",expires=" + x.store.volatileCount.toString() + ",avg_ttl=0\r\n";
      }
    }
  }
  replyBulkString(x.out, text);
}

const SECTIONS: string[] = ["server", "clients", "memory", "stats", "keyspace"];

// COMMAND INFO's ten fields: name, arity, flags, first key, last key, step,
// ACL categories, tips, key specifications, subcommands.
function writeInfo(out: ByteBuffer, c: Command): void {
  replyArray(out, 10);
  replyBulkString(out, c.fullName);
  replyInteger(out, c.arity);
  statusArray(out, c.flags);
  replyInteger(out, c.firstKey);
  replyInteger(out, c.lastKey);
  replyInteger(out, c.keyStep);
  statusArray(out, c.categories);
  replyArray(out, c.tips.length);
  for (let i = 0; i < c.tips.length; i++) replyBulkString(out, c.tips[i]);
  writeKeySpecs(out, c);
  replyArray(out, c.subcommands.length);
  for (let i = 0; i < c.subcommands.length; i++) writeInfo(out, c.subcommands[i]);
}

// The one key specification every keyed command here has: keys start at
// index firstKey and run to lastKey (or the end) by keyStep.
function writeKeySpecs(out: ByteBuffer, c: Command): void {
  if (c.firstKey == 0) { replyArray(out, 0); return; }
  replyArray(out, 1);
  replyArray(out, c.keyNotes.length > 0 ? 8 : 6);
  if (c.keyNotes.length > 0) {
    replyBulkString(out, "notes");
    replyBulkString(out, c.keyNotes);
  }
  replyBulkString(out, "flags");
  statusArray(out, c.keyFlags);
  replyBulkString(out, "begin_search");
  replyArray(out, 4);
  replyBulkString(out, "type");
  replyBulkString(out, "index");
  replyBulkString(out, "spec");
  replyArray(out, 2);
  replyBulkString(out, "index");
  replyInteger(out, c.firstKey);
  replyBulkString(out, "find_keys");
  replyArray(out, 4);
  replyBulkString(out, "type");
  replyBulkString(out, "range");
  replyBulkString(out, "spec");
  replyArray(out, 6);
  replyBulkString(out, "lastkey");
  replyInteger(out, c.lastKey < 0 ? -1 : c.lastKey - c.firstKey);
  replyBulkString(out, "keystep");
  replyInteger(out, c.keyStep);
  replyBulkString(out, "limit");
  replyInteger(out, 0);
}

// COMMAND DOCS's map for one command. Bulk strings throughout: redis-cli
// asserts that every name and value here is one.
function writeDocs(out: ByteBuffer, c: Command): void {
  const fields = c.subcommands.length > 0 ? 10 : 8;
  replyArray(out, fields);
  replyBulkString(out, "summary");
  replyBulkString(out, c.summary);
  replyBulkString(out, "since");
  replyBulkString(out, c.since);
  replyBulkString(out, "group");
  replyBulkString(out, c.group);
  replyBulkString(out, "complexity");
  replyBulkString(out, c.complexity);
  if (c.subcommands.length > 0) {
    replyBulkString(out, "subcommands");
    replyArray(out, c.subcommands.length * 2);
    for (let i = 0; i < c.subcommands.length; i++) {
      replyBulkString(out, c.subcommands[i].fullName);
      writeDocs(out, c.subcommands[i]);
    }
  }
}

function statusArray(out: ByteBuffer, items: string[]): void {
  replyArray(out, items.length);
  for (let i = 0; i < items.length; i++) replyStatus(out, items[i]);
}

// Redis's help replies: a first line naming the command, the lines, then HELP.
function helpLines(out: ByteBuffer, command: string, lines: string[]): void {
  replyArray(out, lines.length + 3);
  replyStatus(out, command + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
  for (let i = 0; i < lines.length; i++) replyStatus(out, lines[i]);
  replyStatus(out, "HELP");
  replyStatus(out, "    Prints this help.");
}

/**
 * Redis's glob (stringmatchlen), ignoring case: * any run, ? any one
 * character, [abc] [^abc] [a-z] sets, \x a literal x.
 */
export function globMatch(pattern: string, text: string): bool {
  const p = pattern.toLowerCase();
  const s = text.toLowerCase();
  // Greedy with one backtracking point (the last *): O(pattern x text) at
  // worst, where recursion on every * would be exponential in the stars.
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    if (pi < p.length && p.charCodeAt(pi) == 42) { // *
      starP = pi++;
      starS = si;
    } else if (pi < p.length && matchOne(p, pi, s.charCodeAt(si))) {
      pi = tokenEnd(p, pi);
      si++;
    } else if (starP >= 0) {
      pi = starP + 1;
      si = ++starS;
    } else {
      return false;
    }
  }
  while (pi < p.length && p.charCodeAt(pi) == 42) pi++;
  return pi == p.length;
}

// Where the one-character token at p[pi] (a character, ?, \x or a [set]) ends.
function tokenEnd(p: string, pi: i32): i32 {
  const c = p.charCodeAt(pi);
  if (c == 92 && pi + 1 < p.length) return pi + 2;
  if (c != 91) return pi + 1;
  pi++;
  if (pi < p.length && p.charCodeAt(pi) == 94) pi++; // ^
  while (pi < p.length && p.charCodeAt(pi) != 93) {
    if (p.charCodeAt(pi) == 92 && pi + 1 < p.length) pi++;
    pi++;
  }
  return pi < p.length ? pi + 1 : pi;
}

// Does the token at p[pi] match character t?
function matchOne(p: string, pi: i32, t: i32): bool {
  const c = p.charCodeAt(pi);
  if (c == 63) return true; // ?
  if (c == 92 && pi + 1 < p.length) return p.charCodeAt(pi + 1) == t; // \x
  if (c != 91) return c == t;
  pi++;
  const negate = pi < p.length && p.charCodeAt(pi) == 94;
  if (negate) pi++;
  let hit = false;
  while (pi < p.length && p.charCodeAt(pi) != 93) {
    let lo = p.charCodeAt(pi);
    if (lo == 92 && pi + 1 < p.length) lo = p.charCodeAt(++pi);
    if (pi + 2 < p.length && p.charCodeAt(pi + 1) == 45 && p.charCodeAt(pi + 2) != 93) { // a-z
      let hi = p.charCodeAt(pi + 2);
      let from = lo;
      if (from > hi) { const swap = from; from = hi; hi = swap; }
      if (t >= from && t <= hi) hit = true;
      pi += 3;
    } else {
      if (t == lo) hit = true;
      pi++;
    }
  }
  return hit != negate;
}
