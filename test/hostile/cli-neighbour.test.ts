// `wasmux run` with two plugins on one command line: the echo plugin and a
// plugin that loops inside a handler (assembly/test-plugins/loop-in-handler),
// the latter with --cpu-budget 100. The CLI prints one "listening on" line
// per plugin; each time the looping plugin spins it is killed within budget
// + 100 ms of its loop starting (measured on CLOCK_MONOTONIC, which the
// guest's clock and this process share) and listens again; all the while
// the echo plugin in the same host keeps echoing, to Node's net and to `nc`.
import { describe, it, expect, afterEach } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { cleanUp, connect, exchange, expectKilledOnTime, runPlugins, sleep, withTimeout, type MultiRun } from '../helpers/hostile.js';

afterEach(cleanUp);

const BUDGET = 100;
const ROUNDS = 2;
const ncHelp = spawnSync('nc', ['-h'], { encoding: 'utf8' });
const NC = ncHelp.error ? null : /-N\s/.test(`${ncHelp.stdout}${ncHelp.stderr}`) ? ['-N', '-w', '5'] : ['-q', '1', '-w', '5'];

/** `printf text | nc 127.0.0.1 port`: what nc printed. */
function ncEcho(port: number, text: string): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      const nc = spawn('nc', [...NC!, '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      nc.stdout.on('data', (d) => (out += d));
      nc.on('error', reject);
      nc.on('close', () => resolve(out));
      nc.stdin.end(text);
    }),
    10_000,
    'nc',
  );
}

async function netEcho(port: number, text: string): Promise<string> {
  const sock = await connect(port);
  try {
    return (await exchange(sock, Buffer.from(text), 5000)).toString();
  } finally {
    sock.destroy();
  }
}

/** Runs ROUNDS loops of the looping plugin while `echo(port, text)` keeps being checked against the echo plugin. */
async function scenario(echo: (port: number, text: string) => Promise<string>, client: string) {
  const run: MultiRun = await runPlugins(
    [
      'dist/plugins/echo.wasm',
      '--listen',
      '127.0.0.1:0',
      'dist/test-plugins/loop-in-handler.wasm',
      '--listen',
      '127.0.0.1:0',
      '--cpu-budget',
      String(BUDGET),
    ],
    2,
  );
  expect(run.stdout.map((l) => l.text).filter((t) => / listening on /.test(t))).toHaveLength(2);
  const echoPort = run.ports.get('echo')!;
  const loopPort = run.ports.get('loop-in-handler')!;
  expect(await echo(echoPort, 'before\n')).toBe('before\n');

  // Keep echoing through the whole scenario.
  let echoes = 0;
  const failures: string[] = [];
  let going = true;
  const keepEchoing = (async () => {
    for (let i = 0; going; i++) {
      const text = `${client} ${i}\n`;
      try {
        const got = await echo(echoPort, text);
        if (got === text) echoes++;
        else failures.push(`${i}: got ${JSON.stringify(got)}`);
      } catch (e) {
        failures.push(`${i}: ${(e as Error).message}`);
      }
      await sleep(5);
    }
  })();

  const killMs: number[] = [];
  const killLines: string[] = [];
  const relistenMs: number[] = [];
  const echoesDuringLoop: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const trigger = await connect(loopPort);
    trigger.write('x');
    const looping = await run.errLine(/^loop-in-handler\[0\] guest info: looping since \d+$/, round);
    const before = echoes;
    const killed = await run.errLine(/^loop-in-handler\[0\] error: killed: /, round, 5000);
    echoesDuringLoop.push(echoes - before);
    expect(killed.text).toMatch(
      new RegExp(`killed: ran \\d+ ms( of CPU)? without returning to poll\\.wait \\(cpu budget ${BUDGET} ms\\)$`),
    );
    killLines.push(killed.text);
    killMs.push(Number(killed.ns - BigInt(/since (\d+)/.exec(looping.text)![1]!)) / 1e6);
    const relisten = await run.errLine(/^loop-in-handler\[0\] guest info: listening on /, round + 1, 10_000);
    relistenMs.push(Number(relisten.ns - killed.ns) / 1e6);
    trigger.destroy();
  }
  going = false;
  await keepEchoing;
  console.log(
    `wasmux run (${client}): looping plugin killed ${killMs.map((x) => x.toFixed(0)).join(', ')} ms after its loop started ` +
      `(budget ${BUDGET}), listening again ${relistenMs.map((x) => x.toFixed(0)).join(', ')} ms later; ` +
      `${echoes} echoes through ${client} meanwhile (${echoesDuringLoop.join(', ')} while a loop was running)`,
  );
  killMs.forEach((ms, i) => expectKilledOnTime(killLines[i]!, ms, BUDGET));
  expect(failures).toEqual([]);
  expect(echoes).toBeGreaterThan(5);
  expect(await echo(echoPort, 'after\n')).toBe('after\n');
  expect(run.stderr.filter((l) => /killed: /.test(l.text))).toHaveLength(ROUNDS);
  expect(run.stderr.filter((l) => /^echo\[/.test(l.text) && / (warn|error): /.test(l.text))).toEqual([]);

  const end = await run.stop('SIGTERM');
  expect(end.code).toBe(0);
  const stats = run.stderr.map((l) => l.text).find((t) => /^loop-in-handler\[0\] (running|ended): accepted /.test(t));
  expect(stats).toMatch(new RegExp(`restarts ${ROUNDS}, ends: killed ${ROUNDS}$`));
}

describe('wasmux run: a looping plugin beside echo in one host', () => {
  it(`kills and restarts the looping plugin within budget + 100 ms while echo keeps echoing (Node net client)`, async () => {
    await scenario(netEcho, 'net');
  }, 30_000);

  it.skipIf(NC === null)(
    `the same with nc as the client${NC === null ? ' (skipped: nc is not installed)' : ''}`,
    async () => {
      await scenario(ncEcho, 'nc');
    },
    30_000,
  );
});
