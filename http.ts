// `import { HttpApp, serveHttp, ... } from "wasmux/http"`: the SDK's HTTP/1.1 server.
export * from "./assembly/sdk/http/index";
