// Test plugin: imports evil:host/fs, which wasmux does not provide.
// test/plugin-loading.test.ts checks that the host refuses it at load time.
import { Context, serve, info } from "../../sdk";
export * from "../../sdk/entry";

@external("evil:host/fs@1.0.0", "read-file")
declare function readFile(pathPtr: usize, pathLen: usize, retptr: usize): void;

const RET = memory.data(8, 4);

serve((ctx: Context): string | null => {
  const path = String.UTF8.encode("/etc/passwd");
  readFile(changetype<usize>(path), path.byteLength, RET);
  info("read " + load<u32>(RET + 4).toString() + " bytes of the host's files");
  return null;
});
