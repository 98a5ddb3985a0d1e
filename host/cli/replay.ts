/** `wasmux replay`: re-runs a recorded instance from its trace, offline (host/trace/replay.ts). */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { WasmuxError, type WasmuxErrorCode } from '../errors.js';
import { loadPlugin } from '../loader/plugin.js';
import { MIB } from '../sandbox/policy.js';
import { capModule } from '../sandbox/module-limits.js';
import { escapeControl, writeStderrLine } from '../supervisor/logger.js';
import { WORKER_LIMITS } from '../supervisor/plugin-server.js';
import { END_REASONS, type EndReason, K_END, type TraceHeader, TraceReader } from '../trace/format.js';
import type { ReplayResult } from '../trace/replay.js';
import type { ReplayThreadInput, ReplayThreadMessage } from '../trace/replay-thread.js';
import { parsed } from './args.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
/** Bytes of a connection's replies shown in the text transcript (--json has them all). */
const SHOWN_BYTES = 4096;

export function replayHelp(): string {
  return `Usage: wasmux replay <trace> [<plugin.wasm>] [options]

Runs a recorded instance again (wasmux run --record), with no network: every
host call the plugin makes is checked against the trace and answered with
what the host answered then. Prints the instance's log lines, what it sent
on each connection, and how it ended (a trap with the recorded message).
The plugin is the one the trace names, unless given; it must be the
recorded one (same sha256).

Options:
  --json                 the transcript as JSON (replies base64)
  --log-level <level>    lines shown: trace, debug, info, warn, error [default: info]
  --allow-other-plugin   replay on a plugin whose sha256 differs (to see where it diverges)
  -h, --help             show this help

Exit status: 0 when the replay matched the trace to its end (whatever the
instance did: a recorded trap is reproduced, not a failure), 1 when the
plugin diverged from the trace (the call's number, what the plugin asked
and what the trace holds are printed), 2 for a usage or trace error
(WASMUX_ERR_TRACE: not a trace, truncated, an unknown version).
See docs/trace-format.md.
`;
}

/** The recorded thread's defaults, for a header that does not say. */
const DEFAULT_HEAP_MIB = 64;
const DEFAULT_CPU_BUDGET_MS = 200;

/**
 * Runs the replay in its own thread, with the recorded thread's V8 limits
 * (trace/replay-thread.ts). A guest that runs on past the trace's last call
 * without calling the host (the recording's thread was terminated there:
 * the watchdog, or a stop it ignored) is ended after twice the CPU budget
 * (a second at least) and reported killed; one that exhausts its heap is
 * reported trapped, as the supervisor reports it.
 */
type Recorded = ReplayResult['recorded'];

/** The trace's end record, read through (which checks every record before the guest runs). */
function recordedEnd(bytes: Uint8Array, file: string): Recorded {
  const reader = new TraceReader(bytes, file);
  let end: Recorded = null;
  while (!reader.atEnd) {
    const rec = reader.next();
    if (rec.kind !== K_END) continue;
    const reason: EndReason | undefined = END_REASONS[rec.f.reason as number];
    if (reason === undefined) throw new WasmuxError('WASMUX_ERR_TRACE', `${file}: an end record with reason ${rec.f.reason}`);
    end = { reason, message: rec.f.hasMessage ? (rec.f.message as string) : null };
  }
  return end;
}

function replayThread(
  bytes: Uint8Array,
  file: string,
  module: WebAssembly.Module,
  header: TraceHeader,
  recorded: Recorded,
): Promise<ReplayResult> {
  const heapMiB = header.limits.maxHeapMiB ?? DEFAULT_HEAP_MIB;
  const graceMs = Math.max(1000, 2 * (header.limits.cpuBudgetMs ?? DEFAULT_CPU_BUDGET_MS));
  const input: ReplayThreadInput = { bytes, file, module };
  const worker = new Worker(new URL('../trace/replay-thread.js', import.meta.url), {
    workerData: input,
    stdout: false,
    stderr: false,
    resourceLimits: { ...WORKER_LIMITS, maxOldGenerationSizeMb: heapMiB },
  });
  // Sent across threads, the replies are plain Uint8Arrays again.
  const revive = (r: ReplayResult): ReplayResult => ({
    ...r,
    recorded,
    connections: r.connections.map((c) => ({ ...c, sent: Buffer.from(c.sent) })),
  });
  const nothingYet: ReplayResult = {
    header,
    lines: [],
    connections: [],
    calls: 0,
    end: { reason: 'incomplete', message: null },
    recorded,
    diverged: null,
  };
  /**
   * The guest ran on past the trace's last call without calling the host:
   * what the recorded one did when the watchdog killed it (or a stop found
   * it spinning); after any other recorded end, a divergence.
   */
  const ranOn = (r: ReplayResult, ms: number): ReplayResult => {
    void worker.terminate();
    const spun = `ran ${ms} ms past the trace's last call without calling the host`;
    const rec = recorded;
    if (rec === null) return { ...r, end: { reason: 'killed', message: `${spun} (the trace has no end record)` } };
    if (rec.reason === 'killed' || rec.reason === 'stopped') return { ...r, end: rec };
    return {
      ...r,
      end: { reason: 'killed', message: spun },
      diverged: { call: r.calls, message: `after call #${r.calls}: the guest ${spun}; the recorded instance ${rec.reason} there` },
    };
  };
  /** The guest exhausted its thread's heap: a trap, as the supervisor reports it; the recorded one must have too. */
  const exhaustedHeap = (r: ReplayResult): ReplayResult => {
    const end = { reason: 'trapped' as const, message: `exhausted its V8 heap (limit ${heapMiB} MiB)` };
    const rec = recorded;
    if (rec === null || (rec.reason === end.reason && rec.message === end.message)) return { ...r, end };
    return {
      ...r,
      end,
      diverged: { call: r.calls, message: `the replayed instance ${end.reason}: ${end.message}; the recorded one ended ${rec.reason}` },
    };
  };
  return new Promise((resolve, reject) => {
    let sofar = nothingYet;
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    worker.on('message', (m: ReplayThreadMessage) => {
      if (m.type === 'exhausted') {
        sofar = revive(m.result);
        timer = setTimeout(() => settle(() => resolve(ranOn(sofar, graceMs))), graceMs);
      } else if (m.type === 'done') settle(() => resolve(revive(m.result)));
      else settle(() => reject(new WasmuxError(m.code as WasmuxErrorCode, m.message)));
    });
    worker.on('error', (e: Error & { code?: string }) =>
      settle(() => {
        if (e.code === 'ERR_WORKER_OUT_OF_MEMORY') resolve(exhaustedHeap(sofar));
        else reject(e);
      }),
    );
    worker.on('exit', () => settle(() => reject(new Error('the replay thread ended without a result'))));
  });
}

function describeEnd(r: ReplayResult): string {
  const { reason, message } = r.end;
  if (reason === 'truncated') return `truncated: the trace was cut at its size bound after call #${r.calls - 1}; replay stopped there`;
  if (reason === 'incomplete')
    return `incomplete: the trace ends without an end record after call #${r.calls - 1} (the recording thread was terminated)`;
  return message === null ? reason : `${reason}: ${message}`;
}

function shown(bytes: Buffer): string {
  const text = JSON.stringify(bytes.subarray(0, SHOWN_BYTES).toString('utf8'));
  return bytes.length > SHOWN_BYTES ? `${text} … (${bytes.length - SHOWN_BYTES} more bytes)` : text;
}

export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        'log-level': { type: 'string', default: 'info' },
        'allow-other-plugin': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }),
  );
  if (values.help) {
    process.stdout.write(replayHelp());
    return 0;
  }
  const [traceFile, pluginArg, ...extra] = positionals;
  if (traceFile === undefined || extra.length > 0) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', 'replay takes a trace file and, optionally, the plugin (see wasmux replay --help)');
  }
  const min = LEVELS.indexOf(values['log-level'] as (typeof LEVELS)[number]);
  if (min < 0)
    throw new WasmuxError(
      'WASMUX_ERR_BAD_ARGUMENT',
      `--log-level must be trace, debug, info, warn or error (got "${values['log-level']}")`,
    );

  let bytes: Uint8Array;
  try {
    bytes = await readFile(traceFile);
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_IO', `cannot read trace ${traceFile}: ${(e as Error).message}`);
  }
  const { header } = new TraceReader(bytes, traceFile);
  const recorded = recordedEnd(bytes, traceFile);
  const pluginPath = pluginArg ?? header.plugin.path;
  if (pluginPath === null) {
    throw new WasmuxError(
      'WASMUX_ERR_BAD_ARGUMENT',
      `the trace does not say where its plugin (${header.plugin.name}) is: give it after the trace`,
    );
  }
  const plugin = await loadPlugin(pluginPath);
  if (plugin.info.sha256 !== header.plugin.sha256) {
    if (!values['allow-other-plugin']) {
      throw new WasmuxError(
        'WASMUX_ERR_TRACE',
        `${pluginPath} (sha256 ${plugin.info.sha256}) is not the plugin the trace recorded (sha256 ${header.plugin.sha256}); --allow-other-plugin replays it anyway`,
      );
    }
    writeStderrLine(`wasmux: replaying on ${pluginPath}, not the recorded plugin (sha256 differs)`);
  }
  // Capped as the run capped it: a memory.grow fails where it failed then.
  const capped = capModule(plugin.info.mainModule.bytes, {
    maxMemoryBytes: header.limits.maxMemoryMiB * MIB,
    maxTableElements: header.limits.maxTableElements,
  });
  const module = await WebAssembly.compile(capped as Uint8Array<ArrayBuffer>);
  const r = await replayThread(bytes, traceFile, module, header, recorded);

  if (values.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          trace: traceFile,
          header: r.header,
          lines: r.lines,
          connections: r.connections.map((c) => ({ ...c, sent: c.sent.toString('base64') })),
          calls: r.calls,
          end: r.end,
          recorded: r.recorded,
          diverged: r.diverged,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const who = `${header.plugin.name}[${header.instance}]`;
    const out: string[] = [
      `replay of ${traceFile}: ${header.plugin.name} instance ${header.instance}` +
        `${header.incarnation > 0 ? ` (restart ${header.incarnation})` : ''}, recorded on ${header.backend} at ${header.startedAt}`,
    ];
    for (const l of r.lines) {
      if (LEVELS.indexOf(l.level) < min) continue;
      out.push(escapeControl(`${who}${l.origin === 'guest' ? ' guest' : ''} ${l.level}: ${l.message}`));
    }
    r.connections.forEach((c, i) => {
      out.push(
        `connection ${i + 1}: handle ${c.handle}, ${c.how} ${c.how === 'accepted' ? 'from' : 'to'} ${c.peer}, ` +
          `received ${c.received} bytes, sent ${c.sent.length} bytes${c.closed ? '' : ' (left open)'}`,
      );
      if (c.sent.length > 0) out.push(`  ${shown(c.sent)}`);
    });
    if (r.diverged === null) {
      out.push(`end: ${describeEnd(r)}`);
      out.push(`replayed ${r.calls} host calls: the plugin did what the trace holds`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
  }
  if (r.diverged !== null) {
    writeStderrLine(`wasmux: error WASMUX_ERR_REPLAY_DIVERGED: ${r.diverged.message}`);
    return 1;
  }
  return 0;
}
