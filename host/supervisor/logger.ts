import type { LogLevel, LogOrigin } from '../sandbox/instance-host.js';

export type { LogOrigin } from '../sandbox/instance-host.js';

/** One log line from the host or a plugin instance. */
export interface LogEntry {
  level: LogLevel;
  /** The plugin's name, or "wasmux" for the host itself. */
  source: string;
  /** Instance number, when the line comes from an instance. */
  instance?: number;
  /**
   * Whose text `message` is: 'guest' for a plugin's own `log` calls, 'host'
   * for every line the host writes (about an instance, or quoting what it
   * said, as in `failed: <its error>`).
   */
  origin: LogOrigin;
  message: string;
}

export type Logger = (entry: LogEntry) => void;

const RANK: Record<LogLevel, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

// What could end a line, rewrite it or hide part of it on a terminal: C0
// controls (newline, carriage return, tab, ESC...), DEL, C1 controls (NEL
// among them), the Unicode line and paragraph separators, and the
// bidirectional embeddings, overrides and isolates (which reorder what a
// terminal shows).
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function visible(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  if (c === '\t') return '\\t';
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every character that could end or disguise a line written as
 * a visible escape (\n, \r, \t, \x1b, \u2028 ...): what it returns is
 * exactly one line. The one rule for everything wasmux writes to stderr,
 * since guest text reaches host lines too (`failed: <guest text>`, trap
 * messages, error messages naming an import).
 */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, visible);
}

/** Writes `text` to stderr as exactly one line (escapeControl). */
export function writeStderrLine(text: string): void {
  process.stderr.write(`${escapeControl(text)}\n`);
}

/**
 * Writes `source[instance] level: message` lines to stderr, dropping levels
 * below `min`. A guest's own line says so: `source[instance] guest level:
 * message`, so that it can never pass for a line of the host's.
 */
export function stderrLogger(min: LogLevel = 'info'): Logger {
  return (e) => {
    if (RANK[e.level] < RANK[min]) return;
    const who = e.instance === undefined ? e.source : `${e.source}[${e.instance}]`;
    writeStderrLine(`${who}${e.origin === 'guest' ? ' guest' : ''} ${e.level}: ${e.message}`);
  };
}

/**
 * One JSON object per line on stderr (`--log-format json`): time (ISO 8601),
 * level, plugin (absent for the host's own lines), instance (when from an
 * instance), origin (host or guest), message, and fields (the values of a
 * counters line) if any. JSON.stringify escapes every
 * control character; U+2028/U+2029 and the bidirectional controls are
 * escaped too, so that a line stays one line wherever it is shown.
 */
export function jsonLine(e: Omit<LogEntry, 'source'> & { source?: string; fields?: Record<string, unknown> }): string {
  const o: Record<string, unknown> = { time: new Date().toISOString(), level: e.level };
  if (e.source !== undefined && e.source !== 'wasmux') o.plugin = e.source;
  if (e.instance !== undefined) o.instance = e.instance;
  o.origin = e.origin;
  o.message = e.message;
  if (e.fields !== undefined) o.fields = e.fields;
  return JSON.stringify(o).replace(
    /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** stderrLogger's JSON form: one jsonLine per entry at `min` or above. */
export function jsonStderrLogger(min: LogLevel = 'info'): Logger {
  return (e) => {
    if (RANK[e.level] < RANK[min]) return;
    process.stderr.write(`${jsonLine(e)}\n`);
  };
}
