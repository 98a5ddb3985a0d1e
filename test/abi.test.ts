/**
 * The canonical ABI, checked against an independent implementation.
 *
 * The guest's bindings (assembly/sdk/bindings.ts) and the host's glue
 * (host/wit/*.ts) are both written by hand, so they could agree with each
 * other while both being wrong. Here the `abi` test plugin (which calls every
 * import of the world, see assembly/test-plugins/abi/index.ts) runs twice
 * against one scripted host:
 *
 *  (a) through stock jco: the component transpiled by jco, whose generated
 *      glue lifts and lowers every value itself and calls plain JS functions
 *      implementing the WIT interfaces;
 *  (b) through the wasmux glue: PluginInstance over the component's core
 *      module, with a scripted Backend under the real poll/tcp/log glue.
 *
 * Both runs must produce the same guest transcript (what the guest decoded
 * from every result, logged through `log`), equal to a literal golden copy,
 * and both hosts must have received the same arguments, equal to the
 * script's literal expectations. The golden copies matter: if the guest and
 * the wasmux glue shared a layout bug, jco would disagree with the wasmux
 * run; if jco itself were wrong, the golden copies would catch it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { transpile } from '@bytecodealliance/jco';
import { readComponent } from '../host/loader/component.js';
import { PluginInstance } from '../host/wit/instance.js';
import { GuestMemory } from '../host/wit/guest-memory.js';
import { HandleTable, registryBytes } from '../host/sandbox/handle-table.js';
import { SocketAddress } from '../host/backends/address.js';
import { ERROR_CODE_NAMES, type ErrorCode } from '../host/generated/contract.js';
import { fail, type Backend } from '../host/backends/backend.js';
import { CTRL_COUNT, STAT_COUNT } from '../host/sandbox/shared.js';
import { LOG_SHARED_SLOTS, LogLimiter, fullBucket } from '../host/sandbox/log-limiter.js';
import { Gate } from '../host/sandbox/gate.js';
import { InstanceHost, type LogLevel } from '../host/sandbox/instance-host.js';
import { type MetricDef, MetricsStore, SERIES_SLOTS, type SeriesDef, metricValuesBuffer } from '../host/sandbox/metrics.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PLUGIN = join(root, 'dist/test-plugins/abi.wasm');

// ---- Values, in one neutral shape for both hosts --------------------------------

type ErrorName = (typeof ERROR_CODE_NAMES)[number];
type Family = 'ipv4' | 'ipv6';
interface Addr {
  family: Family;
  groups: number[];
  port: number;
}
interface Interest {
  readable: boolean;
  writable: boolean;
}
type How = 'receive' | 'send' | 'both';
type ReadyName = 'readable' | 'writable' | 'read-closed' | 'hang-up' | 'error';

const v4 = (a: number, b: number, c: number, d: number, port: number): Addr => ({ family: 'ipv4', groups: [a, b, c, d], port });
const v6 = (groups: number[], port: number): Addr => ({ family: 'ipv6', groups, port });
const BOTH: Interest = { readable: true, writable: true };
const READABLE: Interest = { readable: true, writable: false };
const WRITABLE: Interest = { readable: false, writable: true };
const READY_BITS: readonly ReadyName[] = ['readable', 'writable', 'read-closed', 'hang-up', 'error'];

/** One call as the host received it, lifted. */
type Call =
  | { op: 'listen'; addr: Addr; backlog: number }
  | { op: 'accept'; h: number }
  | { op: 'connect'; addr: Addr }
  | { op: 'recv'; h: number; max: number }
  | { op: 'send'; h: number; data: number[] }
  | { op: 'shutdown'; h: number; how: How }
  | { op: 'close'; h: number }
  | { op: 'local-address'; h: number }
  | { op: 'peer-address'; h: number }
  | { op: 'register' | 'reregister'; h: number; token?: bigint; interest: Interest }
  | { op: 'deregister'; h: number }
  | { op: 'wait'; max: number; timeout: number | undefined }
  | { op: 'give'; h: number; state: number[] }
  | { op: 'adopt'; h: number }
  | { op: 'define'; kind: string; name: string; help: string; labels: string[]; buckets: number[] }
  | { op: 'series'; m: number; values: string[] }
  | { op: 'report'; updates: { series: number; value: number }[] };

/** A new socket: its guest handle (what the wasmux table assigns) and the fd the backend hands out. */
interface NewSocket {
  h: number;
  fd: number;
}
interface ScriptEvent {
  h: number;
  token: bigint;
  ready: ReadyName[];
}

type Answer =
  | { err: ErrorName }
  | { ok: null } // result<_, error-code>
  | { ok: number } // send's byte count
  | { ok: NewSocket } // listen, connect
  | { ok: NewSocket & { peer: Addr } } // accept
  | { ok: Addr } // local-address, peer-address
  | { ok: number[] } // recv
  | { events: ScriptEvent[] }; // wait

interface Step {
  call: Call;
  answer: Answer;
  /**
   * The wasmux glue answers this call itself, without the backend (a stale
   * handle): only the jco host sees it.
   */
  glueOnly?: true;
}

// ---- The script ---------------------------------------------------------------------
// Handles are what a HandleTable built with SALT assigns: slot | generation << 5
// (its 20 slots need 5 index bits), slots from 4 upwards, the generation
// starting at the salt and bumped on reuse. The salt fills the high bits, so
// that a handle cut to 8 or 16 bits anywhere shows.

const SALT = 0x2345678;
const L4 = { h: 0x468acf04, fd: 40 };
const L6 = { h: 0x468acf05, fd: 41 };
const SA = { h: 0x468acf06, fd: 42 };
const SB = { h: 0x468acf07, fd: 43 };
const SC = { h: 0x468acf08, fd: 44 };
const SD = { h: 0x468acf27, fd: 45 }; // SB's slot, reused after close: generation SALT + 1

const LISTEN_V4 = v4(203, 0, 113, 250, 65535);
const LISTEN_V6 = v6([0x2001, 0x0db8, 0xa1b2, 0xc3d4, 0xe5f6, 0x789a, 0xbcde, 0xf012], 65534);
const CONFIG = 'mode=abi; naïve ☃ 🦀';
const INSTANCE = 4_000_000_001; // above 2^31: a signedness slip shows
// The instance's limits (wit/limits.wit): a memory cap past 2^32 (4661 MiB), so a u64 lowered as 32 bits shows.
const MEMORY_LIMIT_MIB = 4661;
const MEMORY_LIMIT = MEMORY_LIMIT_MIB * 1048576;
const MAX_CONNECTIONS = 19_000;

const TOKEN_A = 0xfedcba9876543210n;
const TOKEN_A2 = 0x0123456789abcdefn;
const TOKEN_L = 0x8000000000000001n;
const TOKEN_B = 0x0000000100000000n;

const SCRIPT: Step[] = [
  { call: { op: 'listen', addr: LISTEN_V4, backlog: 0x80000001 }, answer: { ok: L4 } },
  { call: { op: 'listen', addr: LISTEN_V6, backlog: 1 }, answer: { ok: L6 } },
  { call: { op: 'listen', addr: LISTEN_V4, backlog: 7 }, answer: { err: 'address-in-use' } },
  { call: { op: 'local-address', h: L4.h }, answer: { ok: v4(198, 51, 100, 42, 54321) } },
  { call: { op: 'local-address', h: L6.h }, answer: { ok: v6([0xfedc, 0xba98, 0x7654, 0x3210, 0x0123, 0x4567, 0x89ab, 0xcdef], 443) } },
  {
    call: { op: 'accept', h: L4.h },
    answer: { ok: { ...SA, peer: v6([0x2001, 0x0db8, 0x85a3, 0x08d3, 0x1319, 0x8a2e, 0x0370, 0x7348], 61000) } },
  },
  { call: { op: 'accept', h: L4.h }, answer: { ok: { ...SB, peer: v4(192, 0, 2, 33, 1) } } },
  { call: { op: 'accept', h: L4.h }, answer: { err: 'would-block' } },
  { call: { op: 'connect', addr: v4(10, 20, 30, 40, 65535) }, answer: { ok: SC } },
  { call: { op: 'connect', addr: v6([0x2606, 0x4700, 0xab01, 0xcd02, 0xef03, 0x1204, 0x3405, 0x5606], 853) }, answer: { err: 'refused' } },
  // The raw binding call, with garbage in the unused ipv4 slots: both must ignore it.
  { call: { op: 'connect', addr: v4(192, 168, 255, 254, 32768) }, answer: { err: 'timed-out' } },
  { call: { op: 'peer-address', h: SA.h }, answer: { ok: v6([0x8000, 0x9001, 0xa002, 0xb003, 0xc004, 0xd005, 0xe006, 0xffff], 40000) } },
  { call: { op: 'peer-address', h: SC.h }, answer: { err: 'reset' } },
  { call: { op: 'register', h: SA.h, token: TOKEN_A, interest: BOTH }, answer: { ok: null } },
  { call: { op: 'register', h: L4.h, token: TOKEN_L, interest: READABLE }, answer: { ok: null } },
  // `other`: the last error-code case (10).
  { call: { op: 'register', h: SB.h, token: TOKEN_B, interest: WRITABLE }, answer: { err: 'other' } },
  { call: { op: 'reregister', h: SA.h, token: TOKEN_A2, interest: BOTH }, answer: { ok: null } },
  { call: { op: 'recv', h: SA.h, max: 5 }, answer: { ok: [0x00, 0x7f, 0x80, 0xff, 0x41] } },
  { call: { op: 'recv', h: SA.h, max: 65536 }, answer: { err: 'would-block' } },
  { call: { op: 'recv', h: SB.h, max: 3 }, answer: { ok: [] } },
  { call: { op: 'recv', h: SC.h, max: 1 }, answer: { err: 'reset' } },
  { call: { op: 'send', h: SA.h, data: [0x01, 0x02, 0xfe, 0xff, 0x00, 0x80] }, answer: { ok: 4 } },
  { call: { op: 'send', h: SC.h, data: [0x68, 0xc3, 0xa9, 0x6c, 0x6c, 0x6f] }, answer: { ok: 6 } },
  { call: { op: 'send', h: SB.h, data: [0xaa] }, answer: { err: 'closed' } },
  { call: { op: 'shutdown', h: SA.h, how: 'receive' }, answer: { ok: null } },
  { call: { op: 'shutdown', h: SB.h, how: 'send' }, answer: { ok: null } },
  { call: { op: 'shutdown', h: SC.h, how: 'both' }, answer: { err: 'invalid' } },
  {
    call: { op: 'wait', max: 7, timeout: 1234 },
    answer: {
      events: [
        { h: SA.h, token: TOKEN_A2, ready: ['readable', 'read-closed', 'error'] },
        { h: L4.h, token: TOKEN_L, ready: ['readable'] },
      ],
    },
  },
  { call: { op: 'recv', h: SA.h, max: 16 }, answer: { ok: [0x10, 0x20, 0x30] } },
  { call: { op: 'wait', max: 1, timeout: 0 }, answer: { events: [] } },
  { call: { op: 'wait', max: 3, timeout: undefined }, answer: { events: [{ h: SA.h, token: TOKEN_A2, ready: ['writable', 'hang-up'] }] } },
  { call: { op: 'deregister', h: SA.h }, answer: { ok: null } },
  { call: { op: 'deregister', h: L4.h }, answer: { err: 'closed' } },
  // Outside a reload the wasmux host refuses both itself (not draining; nothing handed over).
  { call: { op: 'give', h: SA.h, state: [0x01, 0x80, 0xff] }, answer: { err: 'denied' }, glueOnly: true },
  { call: { op: 'adopt', h: L4.h }, answer: { err: 'would-block' }, glueOnly: true },
  { call: { op: 'close', h: SB.h }, answer: { ok: null } },
  { call: { op: 'close', h: SB.h }, answer: { err: 'bad-handle' }, glueOnly: true },
  { call: { op: 'connect', addr: v4(127, 0, 0, 1, 1) }, answer: { ok: SD } },
  // Metrics are the instance's host's own (sandbox/metrics.ts): these answers are what it gives.
  {
    call: {
      op: 'define',
      kind: 'histogram',
      name: 'abi_latency_seconds',
      help: 'Latency ☃ “help”',
      labels: ['route', 'code'],
      buckets: [0.005, 0.25, 1e300],
    },
    answer: { ok: 1 },
    glueOnly: true,
  },
  {
    call: { op: 'define', kind: 'counter', name: 'abi:requests_total', help: '', labels: [], buckets: [] },
    answer: { ok: 2 },
    glueOnly: true,
  },
  {
    call: { op: 'define', kind: 'gauge', name: 'bad name', help: 'h', labels: [], buckets: [] },
    answer: { err: 'invalid' },
    glueOnly: true,
  },
  { call: { op: 'series', m: 1, values: ['/ü', '200'] }, answer: { ok: 1 }, glueOnly: true },
  { call: { op: 'series', m: 2, values: [] }, answer: { ok: 2 }, glueOnly: true },
  { call: { op: 'series', m: 7, values: [] }, answer: { err: 'bad-handle' }, glueOnly: true },
  {
    call: {
      op: 'report',
      updates: [
        { series: 1, value: 0.1 },
        { series: 2, value: 4294967296.5 },
        { series: 1, value: -0 },
      ],
    },
    answer: { ok: null },
    glueOnly: true,
  },
  { call: { op: 'report', updates: [{ series: 9, value: 0.1 }] }, answer: { err: 'bad-handle' }, glueOnly: true },
];

/** What the guest must log, level and message: the golden transcript. */
const EXPECTED_TRANSCRIPT = [
  'info ctx.config=mode=abi; naïve ☃ 🦀 (25 bytes)',
  'info ctx.listen.length=2',
  'info ctx.listen[0]=203.0.113.250:65535',
  'info ctx.listen[1]=[2001:db8:a1b2:c3d4:e5f6:789a:bcde:f012]:65534',
  'info ctx.instance=4000000001',
  'trace trace: Grüße aus Zürich',
  'debug debug: 日本語のテキスト',
  'info info: emoji 🦀🚀 and ∂x/∂t',
  'warn warn: ½ ≠ 0.5? — “quoted”',
  'error error: Ωmega ☃ 𝄞 end',
  'info listen 203.0.113.250:65535 backlog=2147483649 -> ok 0x468acf04',
  'info listen [2001:db8:a1b2:c3d4:e5f6:789a:bcde:f012]:65534 backlog=1 -> ok 0x468acf05',
  'info listen 203.0.113.250:65535 backlog=7 -> err address-in-use',
  'info local-address 0x468acf04 -> ok 198.51.100.42:54321',
  'info local-address 0x468acf05 -> ok [fedc:ba98:7654:3210:123:4567:89ab:cdef]:443',
  'info accept 0x468acf04 -> ok 0x468acf06 peer=[2001:db8:85a3:8d3:1319:8a2e:370:7348]:61000',
  'info accept 0x468acf04 -> ok 0x468acf07 peer=192.0.2.33:1',
  'info accept 0x468acf04 -> err would-block',
  'info connect 10.20.30.40:65535 -> ok 0x468acf08',
  'info connect [2606:4700:ab01:cd02:ef03:1204:3405:5606]:853 -> err refused',
  'info connect (raw) 192.168.255.254:32768 -> err timed-out',
  'info peer-address 0x468acf06 -> ok [8000:9001:a002:b003:c004:d005:e006:ffff]:40000',
  'info peer-address 0x468acf08 -> err reset',
  'info register 0x468acf06 token=0xfedcba9876543210 interest=both -> ok',
  'info register 0x468acf04 token=0x8000000000000001 interest=readable -> ok',
  'info register 0x468acf07 token=0x0000000100000000 interest=writable -> err other',
  'info reregister 0x468acf06 token=0x0123456789abcdef interest=both -> ok',
  'info recv 0x468acf06 max=5 -> ok len=5 [00 7f 80 ff 41]',
  'info recv 0x468acf06 max=65536 -> err would-block',
  'info recv 0x468acf07 max=3 -> ok len=0 []',
  'info recv 0x468acf08 max=1 -> err reset',
  'info send 0x468acf06 [01 02 fe ff 00 80] -> ok 4',
  'info send 0x468acf08 [68 c3 a9 6c 6c 6f] -> ok 6',
  'info send 0x468acf07 [aa] -> err closed',
  'info shutdown 0x468acf06 receive -> ok',
  'info shutdown 0x468acf07 send -> ok',
  'info shutdown 0x468acf08 both -> err invalid',
  'info wait max=7 timeout=1234 -> 2 events; token=0x0123456789abcdef ready=readable|read-closed|error (21); token=0x8000000000000001 ready=readable (1)',
  'info recv 0x468acf06 max=16 -> ok len=3 [10 20 30]',
  'info wait max=1 timeout=0 -> 0 events',
  'info wait max=3 timeout=none -> 1 events; token=0x0123456789abcdef ready=writable|hang-up (10)',
  'info deregister 0x468acf06 -> ok',
  'info deregister 0x468acf04 -> err closed',
  'info give 0x468acf06 [01 80 ff] -> err denied',
  'info adopt 0x468acf04 -> err would-block',
  'info close 0x468acf07 -> ok',
  'info close 0x468acf07 again -> err bad-handle',
  'info connect 127.0.0.1:1 -> ok 0x468acf27',
  'info metrics.define histogram abi_latency_seconds -> ok 1',
  'info metrics.define counter abi:requests_total -> ok 2',
  'info metrics.define gauge bad name -> err invalid',
  'info metrics.series 1 [/ü 200] -> ok 1',
  'info metrics.series 2 [] -> ok 2',
  'info metrics.series 7 [] -> err bad-handle',
  'info metrics.report 3 -> ok',
  'info metrics.report 1 -> err bad-handle',
  'info monotonic-clock.now -> positive, non-decreasing',
  'info monotonic-clock.resolution -> 1',
  'info wall-clock.now -> plausible',
  'info wall-clock.resolution -> 0s 1000000ns',
  `info limits.memory-limit -> ${MEMORY_LIMIT}`,
  `info limits.max-connections -> ${MAX_CONNECTIONS}`,
];

// ---- A run's record, and the script cursor both hosts share the shape of ----------

interface Run {
  /** Every guest `log` call, as "level message". */
  transcript: string[];
  /** Every scripted call the host received, lifted. */
  calls: Call[];
  /** run's result: null for ok, the message for err. */
  result: string | null;
  /**
   * Why the run ended early (a trap, a call out of script order), if it
   * did: kept rather than thrown, so that the transcripts up to that point
   * still show the first line where the two glues part.
   */
  failure?: string;
  /** Whether the host saw every step of the script. */
  scriptDone: boolean;
  /** The wasmux run only: what its metrics store was told and holds at the end. */
  metrics?: { defs: MetricDef[]; series: SeriesDef[]; values: Float64Array };
}

/** Hands out the script's steps in order; a call out of order fails the run. */
class Cursor {
  private i = 0;
  constructor(private readonly skipGlueOnly: boolean) {}

  next(op: Call['op']): Step {
    while (this.skipGlueOnly && SCRIPT[this.i]?.glueOnly) this.i++;
    const step = SCRIPT[this.i++];
    // A plain Error: both jco (getErrorPayload rethrows it) and the wasmux
    // glue let it escape, so it ends the run instead of becoming an error-code.
    if (!step) throw new Error(`script exhausted, but the guest called ${op}`);
    if (step.call.op !== op) throw new Error(`script step ${this.i - 1} expects ${step.call.op}, the guest called ${op}`);
    return step;
  }

  get done(): boolean {
    while (this.skipGlueOnly && SCRIPT[this.i]?.glueOnly) this.i++;
    return this.i === SCRIPT.length;
  }
}

const isErr = (a: Answer): a is { err: ErrorName } => 'err' in a;
const errCode = (name: ErrorName): ErrorCode => ERROR_CODE_NAMES.indexOf(name) as ErrorCode;
const readyBits = (names: ReadyName[]) => names.reduce((bits, n) => bits | (1 << READY_BITS.indexOf(n)), 0);

// ---- (a) Stock jco ----------------------------------------------------------------

// jco's lifted forms of the WIT types (see the generated interfaces/*.d.ts).
interface JcoAddr {
  address: { tag: Family; val: number[] };
  port: number;
}
interface JcoInterest {
  readable?: boolean;
  writable?: boolean;
}

const toJco = (a: Addr): JcoAddr => ({ address: { tag: a.family, val: [...a.groups] }, port: a.port });
const fromJco = (a: JcoAddr): Addr => ({ family: a.address.tag, groups: [...a.address.val], port: a.port });
const interestFromJco = (i: JcoInterest): Interest => ({ readable: !!i.readable, writable: !!i.writable });

/**
 * How a jco import reports the err case of a result: jco 1.35's generated
 * trampolines catch what the import throws and take `payload` as the error
 * value (getErrorPayload; a thrown Error without `payload` is re-thrown
 * as a trap instead).
 */
class ScriptedError extends Error {
  constructor(readonly payload: ErrorName) {
    super(payload);
  }
}

async function runJco(bytes: Uint8Array, dir: string): Promise<Run> {
  // Instantiation mode: the generated module takes our import object rather
  // than importing shims itself.
  const { files } = await transpile(bytes, { name: 'abi', instantiation: 'sync', quiet: true, noTypescript: true });
  for (const [name, data] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), data);
  }
  const generated = await import(pathToFileURL(join(dir, 'abi.js')).href);

  const run: Run = { transcript: [], calls: [], result: null, scriptDone: false };
  const cursor = new Cursor(false);
  const record = (call: Call): Answer => {
    const step = cursor.next(call.op);
    run.calls.push(call);
    if (isErr(step.answer)) throw new ScriptedError(step.answer.err);
    return step.answer;
  };
  const ok = <T>(a: Answer) => (a as { ok: T }).ok;
  const newSocket = (a: Answer) => ok<NewSocket>(a).h;
  const address = (a: Answer) => toJco(ok<Addr>(a));

  const imports = {
    'wasmux:plugin/poll@0.1.0': {
      register(h: number, token: bigint, interest: JcoInterest) {
        record({ op: 'register', h, token, interest: interestFromJco(interest) });
      },
      reregister(h: number, token: bigint, interest: JcoInterest) {
        record({ op: 'reregister', h, token, interest: interestFromJco(interest) });
      },
      deregister(h: number) {
        record({ op: 'deregister', h });
      },
      wait(max: number, timeout: number | undefined) {
        const a = record({ op: 'wait', max, timeout }) as { events: ScriptEvent[] };
        return a.events.map((e) => ({
          token: e.token,
          ready: {
            readable: e.ready.includes('readable'),
            writable: e.ready.includes('writable'),
            readClosed: e.ready.includes('read-closed'),
            hangUp: e.ready.includes('hang-up'),
            error: e.ready.includes('error'),
          },
        }));
      },
    },
    'wasmux:plugin/tcp@0.1.0': {
      listen: (addr: JcoAddr, backlog: number) => newSocket(record({ op: 'listen', addr: fromJco(addr), backlog })),
      accept(h: number) {
        const a = ok<NewSocket & { peer: Addr }>(record({ op: 'accept', h }));
        return [a.h, toJco(a.peer)];
      },
      connect: (addr: JcoAddr) => newSocket(record({ op: 'connect', addr: fromJco(addr) })),
      recv: (h: number, max: number) => new Uint8Array(ok<number[]>(record({ op: 'recv', h, max }))),
      send: (h: number, data: Uint8Array) => ok<number>(record({ op: 'send', h, data: [...data] })),
      shutdown: (h: number, how: How) => void record({ op: 'shutdown', h, how }),
      close: (h: number) => void record({ op: 'close', h }),
      localAddress: (h: number) => address(record({ op: 'local-address', h })),
      peerAddress: (h: number) => address(record({ op: 'peer-address', h })),
    },
    'wasmux:plugin/handover@0.1.0': {
      give: (h: number, state: Uint8Array) => void record({ op: 'give', h, state: [...state] }),
      adopt(h: number) {
        const a = ok<NewSocket & { state: number[] }>(record({ op: 'adopt', h }));
        return [a.h, new Uint8Array(a.state)];
      },
    },
    'wasmux:plugin/metrics@0.1.0': {
      define: (kind: string, name: string, help: string, labels: string[], buckets: ArrayLike<number>) =>
        ok<number>(record({ op: 'define', kind, name, help, labels: [...labels], buckets: Array.from(buckets) })),
      series: (m: number, values: string[]) => ok<number>(record({ op: 'series', m, values: [...values] })),
      report: (updates: { series: number; value: number }[]) =>
        void record({ op: 'report', updates: updates.map((u) => ({ series: u.series, value: u.value })) }),
    },
    'wasmux:plugin/log@0.1.0': {
      log: (level: LogLevel, message: string) => void run.transcript.push(`${level} ${message}`),
    },
    'wasmux:plugin/limits@0.1.0': {
      memoryLimit: () => BigInt(MEMORY_LIMIT),
      maxConnections: () => MAX_CONNECTIONS,
    },
    'wasmux:plugin/types@0.1.0': {},
    // The same clocks as host/wit/clocks.ts, so the resolutions agree.
    'wasi:clocks/monotonic-clock@0.2.0': {
      now: () => process.hrtime.bigint(),
      resolution: () => 1n,
    },
    'wasi:clocks/wall-clock@0.2.0': {
      now() {
        const ms = Date.now();
        return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
      },
      resolution: () => ({ seconds: 0n, nanoseconds: 1_000_000 }),
    },
  };

  // jco 1.35's generated instantiate() looks imports up by interface name
  // without the version ('wasmux:plugin/tcp'), although its generated
  // ImportObject type spells them with it: provide both spellings.
  const importObject: Record<string, unknown> = { ...imports };
  for (const [name, value] of Object.entries(imports)) importObject[name.replace(/@[^@/]*$/, '')] = value;

  const getCoreModule = (path: string) => new WebAssembly.Module(files[path] as Uint8Array<ArrayBuffer>);
  try {
    const component = generated.instantiate(getCoreModule, importObject);
    component.run({ config: CONFIG, listen: [toJco(LISTEN_V4), toJco(LISTEN_V6)], instance: INSTANCE });
  } catch (e) {
    // jco reports run's err case as a thrown ComponentError carrying the string.
    if (e instanceof Error && 'payload' in e) run.result = e.payload as string;
    else run.failure = String(e);
  }
  run.scriptDone = cursor.done;
  return run;
}

// ---- (b) The wasmux glue ------------------------------------------------------------

const toHost = (a: Addr, out = new SocketAddress()): SocketAddress => {
  out.v6 = a.family === 'ipv6';
  out.groups.fill(0);
  out.groups.set(a.groups);
  out.port = a.port;
  return out;
};
const fromHost = (a: SocketAddress): Addr => ({
  family: a.v6 ? 'ipv6' : 'ipv4',
  groups: Array.from(a.v6 ? a.groups : a.groups.subarray(0, 4)),
  port: a.port,
});
const interestFromBits = (bits: number): Interest => ({ readable: (bits & 1) !== 0, writable: (bits & 2) !== 0 });

async function runWasmux(bytes: Uint8Array): Promise<Run> {
  const module = await WebAssembly.compile(readComponent(bytes).mainModule.bytes as Uint8Array<ArrayBuffer>);
  const run: Run = { transcript: [], calls: [], result: null, scriptDone: false };
  const cursor = new Cursor(true);
  const mem = new GuestMemory();
  // A fixed salt: handles are then the script's numbers.
  const table = new HandleTable(new SharedArrayBuffer(registryBytes(16)), SALT);
  const denied: string[] = [];
  const metrics = { defs: [] as MetricDef[], series: [] as SeriesDef[], values: new Float64Array(metricValuesBuffer(16)) };
  run.metrics = metrics;
  const store = new MetricsStore(16, metrics.values, {
    defined: (d) => metrics.defs.push(d),
    seriesAdded: (x) => metrics.series.push(x),
    capReached() {},
  });

  // The backend sees fds, the guest handles: the script pairs them.
  const handleOfFd = new Map<number, number>();
  const handleOf = (fd: number) => {
    const h = handleOfFd.get(fd);
    if (h === undefined) throw new Error(`the glue passed fd ${fd}, which the script never handed out`);
    return h;
  };

  // A (re)registration's token never reaches the backend: the glue keeps it
  // in the table once the backend has accepted the registration. Read it
  // there at the next call into the host, when the glue has stored it.
  let pendingToken: { call: { h: number; token?: bigint }; ok: boolean } | null = null;
  const settle = () => {
    if (pendingToken?.ok) {
      const slot = table.lookup(pendingToken.call.h);
      pendingToken.call.token = (BigInt(table.tokenHi[slot]!) << 32n) | BigInt(table.tokenLo[slot]!);
    }
    pendingToken = null;
  };

  const record = (call: Call): Answer => {
    settle();
    const step = cursor.next(call.op);
    run.calls.push(call);
    return step.answer;
  };
  // Non-negative results or fail(code), as backend.ts specifies.
  const unit = (a: Answer) => (isErr(a) ? fail(errCode(a.err)) : 0);
  const socket = (a: Answer) => {
    if (isErr(a)) return fail(errCode(a.err));
    const s = (a as { ok: NewSocket }).ok;
    handleOfFd.set(s.fd, s.h);
    return s.fd;
  };
  const address = (a: Answer, out: SocketAddress) => {
    if (isErr(a)) return fail(errCode(a.err));
    toHost((a as { ok: Addr }).ok, out);
    return 0;
  };
  // recv and send get absolute addresses (for the kernel); back to guest offsets.
  const guest = (ptr: number, len: number) => {
    mem.sync();
    return mem.u8.subarray(ptr - mem.base, ptr - mem.base + len);
  };
  const registration = (op: 'register' | 'reregister', fd: number, key: number, interest: number) => {
    const h = handleOf(fd);
    expect(key, `${op}: the event key is the handle`).toBe(h);
    const call = { op, h, interest: interestFromBits(interest) };
    const answer = record(call);
    pendingToken = { call, ok: !isErr(answer) };
    return unit(answer);
  };

  const backend: Backend = {
    name: 'epoll',
    ownDescriptors: [],
    wakeTarget: -1,
    close() {},
    lastOsError: () => 'none (scripted)',
    register: (fd, key, interest) => registration('register', fd, key, interest),
    reregister: (fd, key, interest) => registration('reregister', fd, key, interest),
    deregister: (fd) => unit(record({ op: 'deregister', h: handleOf(fd) })),
    wait(out, max, timeoutMs) {
      const a = record({ op: 'wait', max, timeout: timeoutMs < 0 ? undefined : timeoutMs }) as { events: ScriptEvent[] };
      a.events.forEach((e, i) => {
        out[2 * i] = e.h;
        out[2 * i + 1] = readyBits(e.ready);
      });
      return a.events.length;
    },
    listen: (addr, backlog) => socket(record({ op: 'listen', addr: fromHost(addr), backlog })),
    accept(fd, peer) {
      const a = record({ op: 'accept', h: handleOf(fd) });
      if (isErr(a)) return fail(errCode(a.err));
      toHost((a as { ok: { peer: Addr } }).ok.peer, peer);
      return socket(a);
    },
    connect: (addr) => socket(record({ op: 'connect', addr: fromHost(addr) })),
    recv(fd, ptr, len) {
      const a = record({ op: 'recv', h: handleOf(fd), max: len });
      if (isErr(a)) return fail(errCode(a.err));
      const data = (a as { ok: number[] }).ok;
      guest(ptr, len).set(data);
      return data.length;
    },
    send(fd, ptr, len) {
      const a = record({ op: 'send', h: handleOf(fd), data: [...guest(ptr, len)] });
      return isErr(a) ? fail(errCode(a.err)) : (a as { ok: number }).ok;
    },
    shutdown: (fd, how) => unit(record({ op: 'shutdown', h: handleOf(fd), how: (['receive', 'send', 'both'] as const)[how]! })),
    closeSocket: (fd) => void record({ op: 'close', h: handleOf(fd) }),
    localAddress: (fd, out) => address(record({ op: 'local-address', h: handleOf(fd) }), out),
    peerAddress: (fd, out) => address(record({ op: 'peer-address', h: handleOf(fd) }), out),
  };

  const listen = [toHost(LISTEN_V4), toHost(LISTEN_V6)];
  const stats = new Float64Array(STAT_COUNT);
  const control = new Int32Array(new SharedArrayBuffer(CTRL_COUNT * 4));
  const gate = new Gate(control, stats);
  const host = new InstanceHost({
    table,
    backend,
    // Generous enough that the glue passes every scripted value through unchanged.
    limits: {
      listen,
      connectAllowed: () => true,
      maxEventsPerWait: 64,
      maxRecvBytes: 1 << 20,
      maxBacklog: 0xffffffff,
      sharedListen: false,
      maxConnections: MAX_CONNECTIONS,
      maxMemoryMiB: MEMORY_LIMIT_MIB,
      idleTimeoutMs: 0,
      maxSendQueueBytes: 65536,
      handoverStateBytes: 65536,
      metricSeries: 16,
      proxyHeaderTimeoutMs: 3000,
    },
    stats,
    control,
    gate,
    logLimit: new LogLimiter(new Float64Array(LOG_SHARED_SLOTS), fullBucket(), () => {}),
    log(level, origin, message) {
      if (origin === 'host' && message.startsWith('denied: ')) {
        denied.push(message.slice('denied: '.length));
        return;
      }
      settle();
      run.transcript.push(`${level} ${message}`);
    },
    listening() {},
    metrics: store,
  });

  try {
    const plugin = new PluginInstance(module, { mem, host }, gate);
    plugin.initialize();
    run.result = plugin.run({ config: CONFIG, listen, instance: INSTANCE });
    settle();
  } catch (e) {
    run.failure = String(e);
  }
  if (denied.length > 0) run.failure ??= `the policy refused: ${denied.join('; ')}`;
  run.scriptDone = cursor.done;
  return run;
}

// ---- The comparison ----------------------------------------------------------------

/**
 * Reduces calls made in script order (one per step) to what the wasmux
 * backend can observe: no steps the glue answers itself, and no token for a
 * registration the backend refused (the glue only keeps accepted tokens).
 */
function observableByWasmux(calls: Call[]): Call[] {
  return calls.flatMap((call, i): Call[] => {
    const step = SCRIPT[i]!;
    if (step.glueOnly) return [];
    if ('token' in call && isErr(step.answer)) {
      const { token: _, ...rest } = call;
      return [rest];
    }
    return [call];
  });
}

describe('canonical ABI: the guest bindings and the wasmux glue agree with stock jco', () => {
  let dir: string;
  let jco: Run;
  let wasmux: Run;

  beforeAll(async () => {
    const bytes = await readFile(PLUGIN);
    dir = await mkdtemp(join(tmpdir(), 'wasmux-abi-'));
    jco = await runJco(bytes, dir);
    wasmux = await runWasmux(bytes);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives the guest the same results through both glues, as scripted', () => {
    // Line by line first, for a readable failure.
    const n = Math.max(jco.transcript.length, wasmux.transcript.length);
    for (let i = 0; i < n; i++) {
      expect(wasmux.transcript[i], `transcript line ${i}`).toBe(jco.transcript[i]);
    }
    expect(jco.transcript).toEqual(EXPECTED_TRANSCRIPT);
    expect(wasmux.transcript).toEqual(EXPECTED_TRANSCRIPT);
    expect(jco.failure, 'the jco run ended early').toBeUndefined();
    expect(wasmux.failure, 'the wasmux run ended early').toBeUndefined();
  });

  it('gives both hosts the same lifted arguments, as scripted', () => {
    expect(jco.scriptDone, 'the jco host saw the whole script').toBe(true);
    expect(wasmux.scriptDone, 'the wasmux backend saw the whole script').toBe(true);
    const script = SCRIPT.map((s) => s.call);
    expect(jco.calls).toEqual(script);
    expect(wasmux.calls).toEqual(observableByWasmux(script));
    expect(wasmux.calls).toEqual(observableByWasmux(jco.calls));
    // Spot checks of the values most likely to be mangled, spelled out.
    const tokens = jco.calls.filter((c) => c.op === 'register' || c.op === 'reregister').map((c) => ('token' in c ? c.token : undefined));
    expect(tokens).toEqual([0xfedcba9876543210n, 0x8000000000000001n, 0x0000000100000000n, 0x0123456789abcdefn]);
    expect(wasmux.calls.find((c) => c.op === 'reregister')).toEqual({
      op: 'reregister',
      h: 0x468acf06,
      token: 0x0123456789abcdefn,
      interest: BOTH,
    });
    expect(wasmux.calls[0]).toEqual({
      op: 'listen',
      addr: { family: 'ipv4', groups: [203, 0, 113, 250], port: 65535 },
      backlog: 2147483649,
    });
    expect(wasmux.calls.find((c) => c.op === 'send')).toEqual({ op: 'send', h: 0x468acf06, data: [1, 2, 254, 255, 0, 128] });
  });

  it('gives the wasmux metrics store the definitions and updates jco lifted', () => {
    const lifted = SCRIPT.map((x) => x.call);
    const defs = lifted.filter((c) => c.op === 'define').slice(0, 2);
    expect(wasmux.metrics!.defs).toEqual(defs.map(({ op: _, ...d }, i) => ({ id: i + 1, ...d })));
    expect(wasmux.metrics!.series).toEqual([
      { id: 1, metric: 1, values: ['/ü', '200'] },
      { id: 2, metric: 2, values: [] },
    ]);
    const v = wasmux.metrics!.values;
    // The histogram: -0 in the first bucket (<= 0.005), 0.1 in the second (<= 0.25); the sum 0.1.
    expect([...v.subarray(0, 4)]).toEqual([1, 1, 0, 0]);
    expect(v[SERIES_SLOTS - 1]).toBe(0.1);
    expect(v[SERIES_SLOTS]).toBe(4294967296.5);
  });

  it("returns run's err string through both glues", () => {
    expect(jco.result).toBe('abi-done');
    expect(wasmux.result).toBe('abi-done');
  });
});
