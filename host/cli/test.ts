/** `wasmux test`: runs a scenario against a plugin on the simulated network, under many seeds. */
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { WasmuxError } from '../errors.js';
import { loadPlugin } from '../loader/plugin.js';
import type { PolicyInput } from '../sandbox/policy.js';
import { FAULT_HELP, FAULT_KINDS, ALL_FAULTS, formatFaults, parseFaults } from '../sim/faults.js';
import { DEFAULT_SEED_TIMEOUT_MS, parseSeeds, testSeeds, type SeedOutcome } from '../sim/runner.js';
import { integer, parsed } from './args.js';

const DEFAULT_SEEDS = '1..100';
/** Transcript lines printed at most (the first and the last ones; the middle is cut and said so). */
const MAX_TRANSCRIPT_LINES = 400;

export function testHelp(): string {
  const kinds = FAULT_KINDS.map((k) => `  ${k.padEnd(14)}${FAULT_HELP[k]} [all: ${ALL_FAULTS[k]}]`).join('\n');
  return `Usage: wasmux test <plugin.wasm> [--seeds a..b] [--faults <spec>] [--scenario <file.mjs>]

Runs a scenario against the plugin on a simulated network (no real sockets,
virtual time, faults chosen by a seeded random source) once per seed. A
failing seed is printed with the faults that remain after shrinking, the
faults applied, its transcript and a command line that reproduces it.
Exit status: 0 every seed passed, 1 a seed failed, 2 a usage error.

Options:
  --seeds <a..b>         seeds to run (or one seed) [default: ${DEFAULT_SEEDS}]
  --faults <spec>        faults to inject [default: all]
  --scenario <file.mjs>  the scenario: export default function* (net) { ... }
                         [default: 3 clients send random bytes and close; the
                         plugin must accept, not trap or return, and close
                         each connection within 5 s of the client]
  --config <string>      passed to the plugin as ctx.config
  --policy <file.json>   the plugin's policy (as for wasmux run)
  --timeout <ms>         real time one seed may take [default: ${DEFAULT_SEED_TIMEOUT_MS}]
  --transcript           print every seed's transcript, passed or failed
  -h, --help             show this help

Faults spec: comma-separated entries, applied left to right:
  all | none | <kind>=<rate 0..1> | <kind>=@<step>/<step>... | <kind>#<conn>=...
(#<conn>: that connection only, numbered from 1 as the transcript shows;
#0: the faults tied to no connection: clock jumps, spurious events, accept.)
Kinds:
${kinds}

Example:
  wasmux test dist/plugins/echo.wasm --seeds 1..200 --faults all,reset=0
`;
}

function quote(arg: string): string {
  return /^[\w./:=@,#+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function transcriptText(transcript: string): string {
  const lines = transcript.trimEnd().split('\n');
  if (lines.length <= MAX_TRANSCRIPT_LINES) return lines.map((l) => `  ${l}`).join('\n');
  const head = lines.slice(0, 100);
  const tail = lines.slice(lines.length - (MAX_TRANSCRIPT_LINES - 100));
  return [...head.map((l) => `  ${l}`), `  … ${lines.length - MAX_TRANSCRIPT_LINES} lines cut …`, ...tail.map((l) => `  ${l}`)].join('\n');
}

export async function testCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        seeds: { type: 'string' },
        faults: { type: 'string' },
        scenario: { type: 'string' },
        config: { type: 'string' },
        policy: { type: 'string' },
        timeout: { type: 'string' },
        transcript: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }),
  );
  if (values.help) {
    process.stdout.write(testHelp());
    return 0;
  }
  if (positionals.length !== 1)
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', 'test needs exactly one plugin file (see wasmux test --help)');
  const pluginPath = positionals[0]!;
  const { from, to } = parseSeeds(values.seeds ?? DEFAULT_SEEDS);
  const faults = formatFaults(parseFaults(values.faults ?? 'all'));
  const timeoutMs = integer('--timeout', values.timeout) ?? DEFAULT_SEED_TIMEOUT_MS;
  if (timeoutMs < 1) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', '--timeout must be at least 1 ms');
  let policy: PolicyInput | undefined;
  if (values.policy !== undefined) {
    try {
      policy = JSON.parse(await readFile(values.policy, 'utf8')) as PolicyInput;
    } catch (e) {
      throw new WasmuxError('WASMUX_ERR_BAD_POLICY', `policy ${values.policy}: ${(e as Error).message}`);
    }
  }
  // Refused here, before any thread starts: the same error as every other command gives.
  const { name } = await loadPlugin(pluginPath);
  const scenario = values.scenario ?? null;
  // A reader that goes away (`| head`) ends the output, not the run: its exit status still says how it went.
  let reading = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    reading = false;
  });
  const out = (s: string) => {
    if (reading) process.stdout.write(`${s}\n`);
  };
  out(`wasmux test: ${name}, seeds ${from}..${to}, faults ${faults}, scenario ${scenario ?? '(default)'}`);

  const report = await testSeeds({
    plugin: pluginPath,
    scenario,
    config: values.config,
    policy,
    from,
    to,
    faults,
    timeoutMs,
    progress: (o: SeedOutcome) => {
      if (o.failure !== null) out(`seed ${o.seed}: FAIL: ${o.failure}`);
      else if (values.transcript) out(`seed ${o.seed}: pass`);
      if (values.transcript && o.result !== null) out(transcriptText(o.result.transcript));
    },
  });
  const total = to - from + 1;
  if (report.shrunk === null) {
    out(`wasmux test: all ${total} seeds passed`);
    return 0;
  }
  const seeds = report.failed.map((o) => o.seed);
  out(`wasmux test: ${report.failed.length} of ${total} seeds failed (${seeds.slice(0, 20).join(', ')}${seeds.length > 20 ? ', …' : ''})`);
  const { outcome, removed, pinned } = report.shrunk;
  const how = [
    ...(removed.length > 0 ? [`switched off: ${removed.join(', ')}`] : []),
    ...(pinned !== null ? [`${pinned.kept} of ${pinned.of} faults kept, pinned to their steps`] : []),
  ];
  out('');
  out(`seed ${outcome.seed} (the first failure), shrunk to faults ${outcome.faults}${how.length > 0 ? ` (${how.join('; ')})` : ''}`);
  out(`failure: ${outcome.failure}`);
  if (outcome.result !== null) {
    const applied = outcome.result.applied;
    out(`faults applied (${applied.length}):`);
    for (const f of applied) out(`  step ${f.step} ${f.kind}${f.conn > 0 ? ` #${f.conn}` : ''}: ${f.detail}`);
    out('transcript:');
    out(transcriptText(outcome.result.transcript));
  }
  const command = (faultSpec: string) => {
    const args = ['wasmux', 'test', pluginPath, '--seeds', `${outcome.seed}..${outcome.seed}`, '--faults', faultSpec];
    if (scenario !== null) args.push('--scenario', scenario);
    if (values.config !== undefined) args.push('--config', values.config);
    if (values.policy !== undefined) args.push('--policy', values.policy);
    return `  ${args.map(quote).join(' ')}`;
  };
  out('reproduce:');
  out(command(outcome.faults));
  if (outcome.faults !== faults) {
    out('the seed as first run:');
    out(command(faults));
  }
  return 1;
}
