/**
 * The memory cap, enforced in the module itself: the guest's core module is
 * rewritten so its memory declares `max = cap`. memory.grow past the cap then
 * fails inside the guest (it returns -1; AssemblyScript's allocator aborts),
 * whatever the host's RSS, and no polling is involved.
 */
import { WasmuxError } from '../errors.js';

const PAGE = 65536;
const MEMORY_SECTION = 5;

function readLeb(b: Uint8Array, at: number): [value: number, next: number] {
  let v = 0;
  let shift = 0;
  for (let i = at; i < b.length && i < at + 10; i++) {
    v += (b[i]! & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b[i]! & 0x80) === 0) return [v, i + 1];
  }
  throw new WasmuxError('WASMUX_ERR_MALFORMED', `bad LEB128 number in the core module at byte ${at}`);
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

/**
 * Returns a copy of `core` whose single defined memory has at most
 * `maxBytes` (rounded down to whole pages). Throws WASMUX_ERR_POLICY when
 * the module needs more than that at start, WASMUX_ERR_UNSUPPORTED_SHAPE for
 * shared or 64-bit memories (never produced by the SDK).
 */
export function capMemory(core: Uint8Array, maxBytes: number): Uint8Array {
  const capPages = Math.floor(maxBytes / PAGE);
  let at = 8;
  while (at < core.length) {
    const id = core[at]!;
    const [size, body] = readLeb(core, at + 1);
    const end = body + size;
    if (end > core.length) throw new WasmuxError('WASMUX_ERR_MALFORMED', `section ${id} runs past the end of the core module`);
    if (id === MEMORY_SECTION) {
      const [count, p] = readLeb(core, body);
      if (count !== 1) throw new WasmuxError('WASMUX_ERR_UNSUPPORTED_SHAPE', `the core module defines ${count} memories; wasmux expects one`);
      const flags = core[p]!;
      if (flags > 1) throw new WasmuxError('WASMUX_ERR_UNSUPPORTED_SHAPE', `the core module's memory is shared or 64-bit (limits flags ${flags})`);
      const [min, q] = readLeb(core, p + 1);
      let max = Infinity;
      let r = q;
      if (flags === 1) [max, r] = readLeb(core, q);
      if (min > capPages) {
        throw new WasmuxError('WASMUX_ERR_POLICY',
          `the plugin needs ${(min * PAGE) / 1048576} MiB of memory at start; its policy allows ${maxBytes / 1048576} MiB`);
      }
      const newBody = [...leb(1), 0x01, ...leb(min), ...leb(Math.min(max, capPages)), ...core.subarray(r, end)];
      const out = new Uint8Array(at + 1 + leb(newBody.length).length + newBody.length + (core.length - end));
      out.set(core.subarray(0, at));
      out.set([MEMORY_SECTION, ...leb(newBody.length), ...newBody], at);
      out.set(core.subarray(end), at + 1 + leb(newBody.length).length + newBody.length);
      return out;
    }
    at = end;
  }
  throw new WasmuxError('WASMUX_ERR_UNSUPPORTED_SHAPE', 'the core module defines no memory of its own');
}
