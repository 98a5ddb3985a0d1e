// The SDK as the package "wasmux": AssemblyScript (0.28) resolves `import ... from "wasmux"`
// to this file in node_modules/wasmux/. The SDK itself is assembly/sdk/.
export * from "./assembly/sdk/index";
