// http: an HTTP/1.1 origin server, written on the SDK's HTTP server
// (assembly/sdk/http: parsing, keep-alive, pipelining, limits, timers),
// which runs on the SDK's Server (the event loop).
//
//   npx wasmux run dist/plugins/http.wasm --listen 127.0.0.1:8080 [--config idle-ms=300]
//   curl -i http://127.0.0.1:8080/
//
// This plugin is its routes (routes.ts); --config sets the HTTP server's
// limits (assembly/sdk/http/options.ts).

import { Context, serve } from "../../sdk";
import { HttpOptions, serveHttp } from "../../sdk/http";
import { Routes } from "./routes";
export * from "../../sdk/entry";

serve((ctx: Context): string | null => {
  const options = new HttpOptions();
  const err = options.parse(ctx.config);
  if (err !== null) return err;
  // The routes read no header field: the parser need not keep them.
  options.keepHeaders = false;
  return serveHttp(ctx, new Routes(), options);
});
