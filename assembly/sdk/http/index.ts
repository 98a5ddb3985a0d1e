// The SDK's HTTP/1.1 server: `import { HttpApp, Request, Response, serveHttp } from "wasmux/http"`
// (in this repository, "../../sdk/http"). server.ts says how it behaves,
// parser.ts what it accepts, options.ts what can be set.
export { HttpApp, HttpServer, HttpConnection, HttpProtocol, serveHttp } from "./server";
export { HttpOptions } from "./options";
export { Method, Request, Parser, Step } from "./parser";
export { Response, Text, TEXT_PLAIN, APPLICATION_JSON, OCTET_STREAM, reasonPhrase } from "./response";
export { HttpStats, httpStats } from "./stats";
