import type { LogLevel, LogOrigin } from '../wit/context.js';

export type { LogOrigin } from '../wit/context.js';

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

/** Writes `source[instance] level: message` lines to stderr, dropping levels below `min`. */
export function stderrLogger(min: LogLevel = 'info'): Logger {
  return (e) => {
    if (RANK[e.level] < RANK[min]) return;
    const who = e.instance === undefined ? e.source : `${e.source}[${e.instance}]`;
    process.stderr.write(`${who} ${e.level}: ${e.message}\n`);
  };
}
