/** `wasmux run`: serve a plugin until SIGINT or SIGTERM. */
import { serve, DEFAULTS, BACKEND_NAMES, resolveBackend, stderrLogger } from '../index.js';
import { WasmuxError } from '../errors.js';
import { parseArgs } from 'node:util';
import { parsed, integer } from './args.js';

export function runHelp(): string {
  let auto: string;
  try {
    auto = resolveBackend('auto');
  } catch {
    auto = 'none available';
  }
  return `Usage: wasmux run <plugin.wasm> [options]

Serves a plugin component: starts its instances, each in its own worker
thread with its own event loop, and stops them cleanly on SIGINT/SIGTERM.

Options:
  --listen <host:port>   an address to serve; repeat for several; port 0
                         picks a free port (printed at start). The plugin
                         may listen on exactly these addresses.
  --workers <n>          instances of the plugin, sharing the listen
                         addresses (SO_REUSEPORT)            [default: ${DEFAULTS.workers}]
  --backend <name>       I/O backend: auto, ${BACKEND_NAMES.join(', ')}
                                                             [default: auto = ${auto} here]
  --config <string>      passed to the plugin as ctx.config  [default: ""]
  --max-handles <n>      listeners + connections per instance [default: ${DEFAULTS.maxHandles}]
  --log-level <level>    trace, debug, info, warn, error     [default: info]
  -h, --help             show this help

Example:
  wasmux run dist/plugins/echo.wasm --listen 127.0.0.1:7000
`;
}

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parsed(() => parseArgs({ args: argv, allowPositionals: true, options: {
    listen: { type: 'string', multiple: true },
    workers: { type: 'string' },
    backend: { type: 'string' },
    config: { type: 'string' },
    'max-handles': { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  } }));
  if (values.help) {
    process.stdout.write(runHelp());
    return 0;
  }
  if (positionals.length !== 1) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', 'run needs exactly one plugin file (see wasmux run --help)');
  const level = values['log-level'] ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level)) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `--log-level must be trace, debug, info, warn or error (got "${level}")`);
  }
  const logger = stderrLogger(level as 'info');

  const server = await serve({
    plugin: positionals[0]!,
    listen: values.listen ?? [],
    workers: integer('--workers', values.workers),
    backend: values.backend,
    config: values.config,
    maxHandles: integer('--max-handles', values['max-handles']),
    logger,
  });

  let signalled = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (signalled) {
      process.stderr.write(`wasmux: ${sig} again, exiting at once\n`);
      process.exit(1);
    }
    signalled = true;
    process.stderr.write(`wasmux: ${sig}, stopping\n`);
    void server.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await server.ready;
  } catch (e) {
    await server.stop();
    throw e;
  }
  const where = server.addresses.map(String).join(', ') || '(no addresses)';
  const workers = server.stats().length;
  process.stdout.write(`wasmux: ${server.name} listening on ${where} (backend ${server.backend}, ${workers} worker${workers === 1 ? '' : 's'})\n`);

  // Every instance ends: stopped by a signal, or by itself.
  await server.finished();
  await server.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const failed = server.stats().length > 0 && !signalled && server.exitReasons().some((r) => r !== 'returned');
  return failed ? 1 : 0;
}
