/**
 * Errors the host raises to its own callers (the CLI, the programmatic API).
 *
 * Every error carries a stable `code` (listed in the README). Errors the
 * *guest* sees are not these: they are WIT `error-code` values, produced by
 * the errno tables in host/ffi/.
 */
export type WasmuxErrorCode =
  | 'WASMUX_ERR_NOT_WASM' // the file is not a WebAssembly binary at all
  | 'WASMUX_ERR_NOT_COMPONENT' // a core module (or other wasm), not a component
  | 'WASMUX_ERR_MALFORMED' // truncated or structurally invalid binary
  | 'WASMUX_ERR_FORBIDDEN_IMPORT' // imports something outside the allowed set
  | 'WASMUX_ERR_MISSING_EXPORT' // does not export what the plugin world requires
  | 'WASMUX_ERR_UNSUPPORTED_SHAPE' // a valid component wasmux cannot run (nested components, a refused feature, a sanity limit)
  | 'WASMUX_ERR_BAD_SIGNATURE' // a core import or export whose type is not the one the world's canonical ABI gives it
  | 'WASMUX_ERR_BAD_ARGUMENT' // CLI or API argument invalid
  | 'WASMUX_ERR_BAD_POLICY' // a policy file or policy flag is invalid
  | 'WASMUX_ERR_POLICY' // the plugin cannot run under its policy (e.g. needs more memory than allowed)
  | 'WASMUX_ERR_BACKEND_UNAVAILABLE' // the requested I/O backend does not exist on this OS
  | 'WASMUX_ERR_LISTEN' // the host could not listen where asked
  | 'WASMUX_ERR_PLUGIN_FAILED' // the plugin's run returned an error or trapped at start
  | 'WASMUX_ERR_CRASH_LOOP' // an instance kept failing at start; the plugin was stopped
  | 'WASMUX_ERR_RELOAD' // a reload failed (the new version did not load, start or get ready) or was refused; the old version serves on
  | 'WASMUX_ERR_IO' // reading the plugin file failed
  | 'WASMUX_ERR_BUILD' // wasmux build: asconfig.json refused (the key named) or asc failed (its diagnostics printed)
  | 'WASMUX_ERR_TOOLCHAIN' // wasmux build: assemblyscript or jco is not installed in the plugin project
  | 'WASMUX_ERR_TRACE' // wasmux replay: not a trace, truncated inside a record, or a version this wasmux does not read
  | 'WASMUX_ERR_REPLAY_DIVERGED'; // wasmux replay: the guest asked the host for something other than the trace holds

export class WasmuxError extends Error {
  readonly code: WasmuxErrorCode;
  constructor(code: WasmuxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WasmuxError';
    this.code = code;
  }
}
