/**
 * The faults a simulation injects, and their spec: a short string usable on
 * the command line.
 *
 *   spec   := entry ("," entry)*
 *   entry  := "all" | "none" | kind ["#" conn] "=" value
 *   value  := rate (a number from 0 to 1: the chance at each opportunity)
 *           | "@" step ("/" step)*  (a schedule: the first opportunity at or after each step)
 *
 * Entries apply left to right: `all,reset=0` is the default mix without
 * resets. `kind#3=...` applies to connection #3 only (connections are
 * numbered from 1 in the order they are made, as the transcript shows) and
 * overrides the global entry there; `#0` names the faults tied to no
 * connection (clock jumps, spurious events, accept, a listener's events). A
 * step is the simulation's count of backend calls, as the transcript shows.
 */
import { WasmuxError } from '../errors.js';

export const FAULT_KINDS = [
  'short-read',
  'short-write',
  'spurious',
  'late',
  'wouldblock',
  'reset',
  'refuse',
  'slow-connect',
  'accept-limit',
  'stall',
  'clock-jump',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What each kind does (README's table and `wasmux test --help`). */
export const FAULT_HELP: Record<FaultKind, string> = {
  'short-read': 'a recv returns fewer bytes than are there (1 or more, at random)',
  'short-write': 'a send takes fewer bytes than offered (1 or more, at random)',
  spurious: 'wait reports readiness for a registered socket that has nothing new',
  late: 'a readiness event arrives 1 to 50 ms (virtual) after its cause',
  wouldblock: 'a storm of 1 to 5 would-blocks from recv or send (one from accept) though they could go on; a new edge follows each',
  reset: 'the peer resets a connection mid-stream (the guest sees reset; the client sees it too)',
  refuse: "the plugin's outbound connect is refused",
  'slow-connect': "the plugin's outbound connect completes 1 to 500 ms (virtual) later",
  'accept-limit': 'accept fails with limit (out of descriptors); the connection stays queued',
  stall: 'the peer stops reading for 1 to 200 ms (virtual): the send buffer fills, sends would-block',
  'clock-jump': 'the wall clock jumps up to an hour either way, the monotonic clock up to 500 ms forward',
};

/** `all`: the default mix. */
export const ALL_FAULTS: Readonly<Record<FaultKind, number>> = {
  'short-read': 0.3,
  'short-write': 0.3,
  spurious: 0.05,
  late: 0.1,
  wouldblock: 0.05,
  reset: 0.002,
  refuse: 0.1,
  'slow-connect': 0.2,
  'accept-limit': 0.05,
  stall: 0.05,
  'clock-jump': 0.01,
};

/** One kind's setting: a rate, or a schedule of steps. */
export type FaultSetting = { rate: number } | { at: number[] };

export interface FaultPlan {
  /** Settings for every connection (kinds not named: never). */
  readonly global: Partial<Record<FaultKind, FaultSetting>>;
  /** Settings for one connection, by its number; they override `global` there. */
  readonly perConnection: Record<number, Partial<Record<FaultKind, FaultSetting>>>;
}

export const NO_FAULTS: FaultPlan = { global: {}, perConnection: {} };

function bad(message: string): WasmuxError {
  return new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `faults: ${message}`);
}

/** Parses a faults spec (see the top of this file); "" is no faults. */
export function parseFaults(spec: string): FaultPlan {
  const global: Partial<Record<FaultKind, FaultSetting>> = {};
  const perConnection: Record<number, Partial<Record<FaultKind, FaultSetting>>> = {};
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    if (entry === 'all') {
      for (const k of FAULT_KINDS) global[k] = { rate: ALL_FAULTS[k] };
      continue;
    }
    if (entry === 'none') {
      for (const k of FAULT_KINDS) delete global[k];
      continue;
    }
    const m = /^([a-z-]+)(?:#(\d+))?=(.*)$/.exec(entry);
    if (!m) throw bad(`"${entry}" is not kind=rate, kind=@step/step, kind#conn=..., all or none`);
    const kind = m[1] as FaultKind;
    if (!FAULT_KINDS.includes(kind)) throw bad(`unknown kind "${m[1]}" (kinds: ${FAULT_KINDS.join(', ')})`);
    const value = m[3]!;
    let setting: FaultSetting;
    if (value.startsWith('@')) {
      const steps = value.slice(1).split('/');
      if (!steps.every((s) => /^\d{1,9}$/.test(s))) throw bad(`"${entry}": a schedule is @step/step/... with whole numbers`);
      setting = { at: steps.map(Number).sort((a, b) => a - b) };
    } else {
      const rate = /^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(value) ? Number(value) : Number.NaN;
      if (!(rate >= 0 && rate <= 1)) throw bad(`"${entry}": the rate must be a number from 0 to 1`);
      setting = { rate };
    }
    if (m[2] === undefined) global[kind] = setting;
    else {
      const conn = Number(m[2]);
      (perConnection[conn] ??= {})[kind] = setting;
    }
  }
  return { global, perConnection };
}

function settingText(s: FaultSetting): string {
  return 'rate' in s ? String(s.rate) : `@${s.at.join('/')}`;
}

/** The spec of a plan (parseFaults(formatFaults(p)) is p); "none" for no faults. */
export function formatFaults(plan: FaultPlan): string {
  const parts: string[] = [];
  for (const k of FAULT_KINDS) {
    const s = plan.global[k];
    if (s && !('rate' in s && s.rate === 0)) parts.push(`${k}=${settingText(s)}`);
  }
  for (const conn of Object.keys(plan.perConnection)
    .map(Number)
    .sort((a, b) => a - b)) {
    for (const k of FAULT_KINDS) {
      const s = plan.perConnection[conn]![k];
      if (s) parts.push(`${k}#${conn}=${settingText(s)}`);
    }
  }
  return parts.length === 0 ? 'none' : parts.join(',');
}

/** The kinds a plan can inject (a non-zero rate or a schedule, anywhere). */
export function kindsOf(plan: FaultPlan): FaultKind[] {
  const on = (s: FaultSetting | undefined) => s !== undefined && !('rate' in s && s.rate === 0);
  return FAULT_KINDS.filter((k) => on(plan.global[k]) || Object.values(plan.perConnection).some((c) => on(c[k])));
}

/** The plan without `kind`, anywhere. */
export function withoutKind(plan: FaultPlan, kind: FaultKind): FaultPlan {
  const global = { ...plan.global };
  delete global[kind];
  const perConnection: FaultPlan['perConnection'] = {};
  for (const [conn, settings] of Object.entries(plan.perConnection)) {
    const s = { ...settings };
    delete s[kind];
    if (Object.keys(s).length > 0) perConnection[Number(conn)] = s;
  }
  return { global, perConnection };
}

/** One fault as it was applied: the transcript and the result list them. */
export interface AppliedFault {
  readonly step: number;
  readonly kind: FaultKind;
  /** The connection it hit (0: none in particular: a clock jump, an accept). */
  readonly conn: number;
  readonly detail: string;
}

/**
 * The spec that applies `faults` again, each at its step on its connection
 * (a schedule per kind and connection, #0 for those tied to none: it draws no
 * decision, and what a fault does comes from its own stream of the seed, so
 * the same seed replays them as they were).
 */
export function pinFaults(faults: readonly AppliedFault[]): string {
  const plan: FaultPlan = { global: {}, perConnection: {} };
  for (const f of faults) {
    const mine = (plan.perConnection[f.conn] ??= {});
    const s = mine[f.kind];
    mine[f.kind] = { at: s !== undefined && 'at' in s ? [...s.at, f.step] : [f.step] };
  }
  return formatFaults(plan);
}
