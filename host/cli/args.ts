/** Shared argument helpers for the commands. */
import { WasmuxError } from '../errors.js';

/** Runs node:util parseArgs, turning its errors into WASMUX_ERR_BAD_ARGUMENT. */
export function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', (e as Error).message);
  }
}

export function integer(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text)) throw new WasmuxError('WASMUX_ERR_BAD_ARGUMENT', `${name} must be a whole number (got "${text}")`);
  return Number(text);
}
