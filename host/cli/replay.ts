/** `wasmux replay`: re-runs a recorded instance from its trace, offline (host/trace/replay.ts). */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { WasmuxError } from '../errors.js';
import { loadPlugin } from '../loader/plugin.js';
import { MIB } from '../sandbox/policy.js';
import { capModule } from '../sandbox/module-limits.js';
import { escapeControl, writeStderrLine } from '../supervisor/logger.js';
import { TraceReader } from '../trace/format.js';
import { type ReplayResult, replay } from '../trace/replay.js';
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
  const reader = new TraceReader(bytes, traceFile);
  const { header } = reader;
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
  const r = replay(reader, module);

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
