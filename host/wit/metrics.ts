/**
 * Host side of wasmux:plugin/metrics@0.1.0 (wit/metrics.wit), at the
 * core-wasm level: lift, call the instance's host (its rules are in
 * sandbox/metrics.ts), lower.
 *
 * What the canonical ABI makes a trap is one here: an out-of-range kind, a
 * list or string beyond the guest's memory, a misaligned list. Everything
 * else is a result: a list longer than the interface allows is refused
 * (`invalid`, or `limit` for report) before its elements are read, and a
 * string that is not UTF-8 is `invalid`.
 */
import { ErrorCode, KIND_NAMES, LAYOUT } from '../generated/contract.js';
import { fail } from '../backends/backend.js';
import {
  BUCKETS_MAX,
  LABEL_NAME_MAX,
  LABEL_VALUE_MAX,
  METRIC_HELP_MAX,
  METRIC_LABELS_MAX,
  METRIC_NAME_MAX,
  REPORT_MAX,
} from '../sandbox/metrics.js';
import type { GlueContext } from './context.js';
import type { GuestMemory } from './guest-memory.js';
import { liftEnum, lowerU32, lowerUnit } from './abi.js';

const UPDATE = LAYOUT.update;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A string of guest memory (bounds checked: a trap), or null when longer than `max` bytes or not UTF-8. */
function liftString(mem: GuestMemory, ptr: number, len: number, max: number): string | null {
  mem.check(ptr, len);
  if (len > max) return null;
  try {
    return utf8.decode(mem.u8.subarray(ptr, ptr + len));
  } catch {
    return null;
  }
}

/** A list's bounds and alignment, as lifting it checks them (a trap). */
function checkList(mem: GuestMemory, ptr: number, len: number, size: number, align: number, what: string): void {
  mem.checkArea(ptr, len * size, align, `${what} list`);
}

/** list<string> (each string bounds-checked), or null when one is over `max` bytes or not UTF-8. */
function liftStrings(mem: GuestMemory, ptr: number, len: number, max: number): string[] | null {
  checkList(mem, ptr, len, 8, 4, 'string');
  const out: string[] = [];
  let ok = true;
  for (let i = 0; i < len; i++) {
    const at = (ptr + 8 * i) >>> 2;
    const s = liftString(mem, mem.u32[at]!, mem.u32[at + 1]!, max);
    if (s === null) ok = false;
    else out.push(s);
  }
  return ok ? out : null;
}

export function metricsImports({ mem, host }: GlueContext) {
  return {
    define(
      kind: number,
      namePtr: number,
      nameLen: number,
      helpPtr: number,
      helpLen: number,
      labelsPtr: number,
      labelsLen: number,
      bucketsPtr: number,
      bucketsLen: number,
      retptr: number,
    ): void {
      kind = liftEnum(kind, KIND_NAMES.length, 'metric kind');
      namePtr >>>= 0;
      nameLen >>>= 0;
      helpPtr >>>= 0;
      helpLen >>>= 0;
      labelsPtr >>>= 0;
      labelsLen >>>= 0;
      bucketsPtr >>>= 0;
      bucketsLen >>>= 0;
      retptr >>>= 0;
      mem.sync();
      const name = liftString(mem, namePtr, nameLen, METRIC_NAME_MAX);
      const help = liftString(mem, helpPtr, helpLen, METRIC_HELP_MAX);
      checkList(mem, labelsPtr, labelsLen, 8, 4, 'label');
      checkList(mem, bucketsPtr, bucketsLen, 8, 8, 'bucket');
      let r: number;
      if (name === null || help === null || labelsLen > METRIC_LABELS_MAX || bucketsLen > BUCKETS_MAX) {
        r = fail(ErrorCode.Invalid);
      } else {
        const labels = liftStrings(mem, labelsPtr, labelsLen, LABEL_NAME_MAX);
        const buckets = mem.f64.slice(bucketsPtr >>> 3, (bucketsPtr >>> 3) + bucketsLen);
        r = labels === null ? fail(ErrorCode.Invalid) : host.metricDefine(kind, name, help, labels, buckets);
      }
      lowerU32(mem, retptr, r);
    },

    series(m: number, valuesPtr: number, valuesLen: number, retptr: number): void {
      valuesPtr >>>= 0;
      valuesLen >>>= 0;
      mem.sync();
      checkList(mem, valuesPtr, valuesLen, 8, 4, 'label value');
      let r: number;
      if (valuesLen > METRIC_LABELS_MAX) {
        r = fail(ErrorCode.Invalid);
      } else {
        const values = liftStrings(mem, valuesPtr, valuesLen, LABEL_VALUE_MAX);
        r = values === null ? fail(ErrorCode.Invalid) : host.metricSeries(m >>> 0, values);
      }
      lowerU32(mem, retptr >>> 0, r);
    },

    report(ptr: number, len: number, retptr: number): void {
      ptr >>>= 0;
      len >>>= 0;
      mem.sync();
      checkList(mem, ptr, len, UPDATE.size, UPDATE.align, 'update');
      let r: number;
      if (len > REPORT_MAX) {
        r = fail(ErrorCode.Limit);
      } else {
        r = host.metricReport(mem.u32, mem.f64, ptr, len);
      }
      lowerUnit(mem, retptr >>> 0, r);
    },
  };
}
