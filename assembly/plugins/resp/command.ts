// What a command is (name, arity, flags, documentation, implementation), the
// table that finds one from a request's first bytes, and the context a
// command runs in. The commands themselves are in commands.ts and
// introspection.ts; this file knows none of them.

import { ByteBuffer, Counter, CounterSeries } from "../../sdk";
import { Clock } from "./clock";
import { Settings } from "./config";
import { Args } from "./parser";
import { Store } from "./store";

/** Counters for INFO. */
export class Stats {
  startedAtMs: i64 = 0;
  connectedClients: i32 = 0;
  totalConnections: i64 = 0;
  commandsProcessed: i64 = 0;
}

/**
 * Everything a command may use while it runs. One per instance: the handler
 * points `args` and `out` at the connection whose request runs.
 */
export class Call {
  args: Args = new Args();
  /** Where replies go: the connection's output buffer. */
  out: ByteBuffer = new ByteBuffer();
  /** Set by QUIT: close once the reply is sent. */
  closeAfterReply: bool = false;
  readonly stats: Stats = new Stats();

  constructor(
    readonly store: Store,
    readonly clock: Clock,
    readonly table: CommandTable,
    readonly settings: Settings,
  ) {}
}

export type CommandFn = (x: Call) => void;

/**
 * A command, described the way Redis describes it to COMMAND INFO and
 * COMMAND DOCS. Built with chained setters so the table in commands.ts reads
 * like Redis's own command reference.
 */
export class Command {
  /** "get", or "config|get" for a subcommand. */
  fullName: string;
  parent: Command | null = null;
  subcommands: Command[] = [];
  /** Its series of the plugin metric commands_total{command} (countCommands), or null. */
  counted: CounterSeries | null = null;
  /** Refused when the store is out of memory (Redis's "denyoom"). */
  denyOom: bool;
  // COMMAND INFO
  firstKey: i32 = 0;
  lastKey: i32 = 0;
  keyStep: i32 = 0;
  keyFlags: string[] = [];
  keyNotes: string = "";
  categories: string[] = [];
  tips: string[] = [];
  // COMMAND DOCS
  group: string = "";
  since: string = "";
  summary: string = "";
  complexity: string = "";

  /**
   * `arity`: the exact argument count including the name, or -n for "at
   * least n". `flags`: Redis's command flags ("write denyoom fast").
   */
  readonly flags: string[];

  constructor(readonly name: string, readonly arity: i32, flags: string, readonly run: CommandFn) {
    this.fullName = name;
    this.flags = flags.length > 0 ? flags.split(" ") : [];
    this.denyOom = this.flags.includes("denyoom");
  }

  /**
   * First and last key argument and the step between keys (last -1: to the
   * end), with the key specification's flags (and notes on them).
   */
  keys(first: i32, last: i32, step: i32, flags: string, notes: string = ""): Command {
    this.firstKey = first;
    this.lastKey = last;
    this.keyStep = step;
    this.keyFlags = flags.split(" ");
    this.keyNotes = notes;
    return this;
  }

  acl(categories: string): Command {
    this.categories = categories.split(" ");
    return this;
  }

  hints(tips: string): Command {
    this.tips = tips.split(" ");
    return this;
  }

  doc(group: string, since: string, summary: string, complexity: string): Command {
    this.group = group;
    this.since = since;
    this.summary = summary;
    this.complexity = complexity;
    return this;
  }

  sub(c: Command): Command {
    c.parent = this;
    c.fullName = this.name + "|" + c.name;
    this.subcommands.push(c);
    return this;
  }

  accepts(argc: i32): bool {
    return this.arity >= 0 ? argc == this.arity : argc >= -this.arity;
  }

  /** The subcommand named by the `len` bytes at `p`, ignoring case. */
  findSub(p: usize, len: i32): Command | null {
    for (let i = 0; i < this.subcommands.length; i++) {
      const c = this.subcommands[i];
      if (sameName(c.name, p, len)) return c;
    }
    return null;
  }
}

// Open addressing over a small power-of-two array, keyed by the name's bytes
// folded to lowercase: finding a command allocates nothing (no string is
// made from the request) and costs one short hash and usually one compare.
const SLOTS: i32 = 128;

export class CommandTable {
  /**
   * Defines the plugin metric `commands_total{command}` (wit/metrics.wit:
   * exported as `<plugin>_commands_total`), one series per command, its
   * subcommands counted under it. Once, at start.
   */
  countCommands(): void {
    const m = new Counter("commands_total", "Commands processed, by command", ["command"]);
    for (let i = 0; i < this.all.length; i++) {
      const c = this.all[i];
      c.counted = m.series([c.name]);
    }
  }

  readonly all: Command[] = [];
  private slots: StaticArray<Command | null> = new StaticArray<Command | null>(SLOTS);

  add(c: Command): void {
    assert(this.all.length < SLOTS / 2, "command table too full");
    this.all.push(c);
    const b = String.UTF8.encode(c.name);
    let i = nameHash(changetype<usize>(b), b.byteLength) & (SLOTS - 1);
    while (this.slots[i] !== null) i = (i + 1) & (SLOTS - 1);
    this.slots[i] = c;
  }

  /** The command named by the `len` bytes at `p`, ignoring case, or null. */
  find(p: usize, len: i32): Command | null {
    let i = nameHash(p, len) & (SLOTS - 1);
    while (true) {
      const c = this.slots[i];
      if (c === null) return null;
      if (sameName(c.name, p, len)) return c;
      i = (i + 1) & (SLOTS - 1);
    }
    return null;
  }

  /** A command by its full name as COMMAND INFO takes it: "get" or "config|get". */
  findFull(p: usize, len: i32): Command | null {
    for (let i = 0; i < len; i++) {
      if (load<u8>(p + <usize>i) == 124 /* | */) {
        const parent = this.find(p, i);
        return parent === null ? null : parent.findSub(p + <usize>i + 1, len - i - 1);
      }
    }
    return this.find(p, len);
  }
}

// Command names are lowercase letters, so OR-ing 0x20 folds a request's
// uppercase letters and cannot make any other byte match one.
function sameName(name: string, p: usize, len: i32): bool {
  if (name.length != len) return false;
  for (let i = 0; i < len; i++) {
    if ((load<u8>(p + <usize>i) | 0x20) != <u8>name.charCodeAt(i)) return false;
  }
  return true;
}

function nameHash(p: usize, len: i32): i32 {
  let h: u32 = 2166136261; // FNV-1a
  for (let i = 0; i < len; i++) {
    h ^= <u32>(load<u8>(p + <usize>i) | 0x20);
    h *= 16777619;
  }
  return <i32>(h ^ (h >> 16));
}
