/**
 * What a plugin's core module may declare, and the caps written into it.
 *
 * Memory and tables are bounded in the module itself: before it is compiled
 * for a policy, its memory's and tables' maximums are rewritten so that
 * `memory.grow` and `table.grow` fail inside the guest at the cap (they
 * return -1), whatever the host's RSS, with no polling. Tables matter as much
 * as memory: their elements live on the worker's V8 heap (8 bytes each), so
 * a few tables of ten million entries would take hundreds of MiB.
 *
 * Everything else a module declares is bounded at load by MODULE_LIMITS
 * (loader/validate.ts).
 */
import { WasmuxError } from '../errors.js';
import { readCoreModule, type Limits } from '../loader/core-module.js';

const PAGE = 65536;
const TABLE_SECTION = 4;
const MEMORY_SECTION = 5;

/** Caps from the policy, written into the module. */
export interface ModuleCaps {
  /** Linear memory, bytes (rounded down to whole 64 KiB pages). */
  maxMemoryBytes: number;
  /** Elements of all tables together. */
  maxTableElements: number;
}

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** limits with a maximum: flags 0x01, min, max. */
function limits(min: number, max: number): number[] {
  return [0x01, ...leb(min), ...leb(max)];
}

/** Rebuilds section `id` of `core` with `edits` (ranges inside its body) replaced. */
function rewriteSection(core: Uint8Array, range: [number, number], edits: { range: [number, number]; bytes: number[] }[]): Uint8Array {
  const [start, end] = range;
  // The section's id byte, then its size (a LEB128), then the body.
  let bodyStart = start + 1;
  while (core[bodyStart++]! & 0x80);
  const parts: Uint8Array[] = [];
  let at = bodyStart;
  for (const e of [...edits].sort((a, b) => a.range[0] - b.range[0])) {
    parts.push(core.subarray(at, e.range[0]), Uint8Array.from(e.bytes));
    at = e.range[1];
  }
  parts.push(core.subarray(at, end));
  const bodyLength = parts.reduce((n, p) => n + p.length, 0);
  const head = Uint8Array.from([core[start]!, ...leb(bodyLength)]);
  const out = new Uint8Array(start + head.length + bodyLength + (core.length - end));
  out.set(core.subarray(0, start));
  let w = start;
  for (const p of [head, ...parts]) {
    out.set(p, w);
    w += p.length;
  }
  out.set(core.subarray(end), w);
  return out;
}

/**
 * Returns a copy of `core` whose memory has at most `caps.maxMemoryBytes`
 * and whose tables have at most `caps.maxTableElements` elements together.
 * Growth room goes to the tables in order: each keeps its initial size and
 * may grow into what the others have not taken, so the maximums add up to
 * the cap at most. Throws WASMUX_ERR_POLICY when the module needs more than
 * a cap at start, WASMUX_ERR_UNSUPPORTED_SHAPE for a memory wasmux does not
 * run (none of its own, several, shared or 64-bit: never produced by the SDK).
 */
export function capModule(core: Uint8Array, caps: ModuleCaps): Uint8Array {
  const mod = readCoreModule(core);
  if (mod.memories.length !== 1) {
    throw new WasmuxError(
      'WASMUX_ERR_UNSUPPORTED_SHAPE',
      mod.memories.length === 0
        ? 'the core module defines no memory of its own'
        : `the core module defines ${mod.memories.length} memories; wasmux expects one`,
    );
  }
  const memory: Limits = mod.memories[0]!;
  if (memory.flags > 1)
    throw new WasmuxError('WASMUX_ERR_UNSUPPORTED_SHAPE', `the core module's memory is shared or 64-bit (limits flags ${memory.flags})`);
  const capPages = Math.floor(caps.maxMemoryBytes / PAGE);
  if (memory.min > capPages) {
    throw new WasmuxError(
      'WASMUX_ERR_POLICY',
      `the plugin needs ${(memory.min * PAGE) / 1048576} MiB of memory at start; its policy allows ${caps.maxMemoryBytes / 1048576} MiB`,
    );
  }
  const initial = mod.tables.reduce((n, t) => n + t.min, 0);
  if (initial > caps.maxTableElements) {
    throw new WasmuxError(
      'WASMUX_ERR_POLICY',
      `the plugin's tables need ${initial} elements at start; its policy allows ${caps.maxTableElements} (maxTableElements)`,
    );
  }
  let room = caps.maxTableElements - initial;
  const tableEdits = mod.tables.map((t) => {
    if (t.flags > 1)
      throw new WasmuxError('WASMUX_ERR_UNSUPPORTED_SHAPE', `a table of the core module is shared or 64-bit (limits flags ${t.flags})`);
    const max = Math.min(t.max ?? Infinity, t.min + room);
    room -= max - t.min;
    return { range: t.range, bytes: limits(t.min, max) };
  });

  // Rewrite the later section first so the earlier one's offsets stay valid.
  let out = rewriteSection(core, mod.sections.get(MEMORY_SECTION)!, [
    { range: memory.range, bytes: limits(memory.min, Math.min(memory.max ?? Infinity, capPages)) },
  ]);
  if (tableEdits.length > 0) out = rewriteSection(out, mod.sections.get(TABLE_SECTION)!, tableEdits);
  return out;
}
