// `export * from "wasmux/entry"`: the exports the host calls (run, cabi_realloc).
export * from "./assembly/sdk/entry";
