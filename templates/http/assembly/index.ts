// {{name}}: an HTTP/1.1 handler served by wasmux.
//
//   GET  /              a greeting
//   GET  /hello/<name>  a greeting for <name>
//   POST /echo          the request body, as sent
//   GET  /headers       the request's User-Agent, as JSON
//   anything else       404 (a known path with another method: 405)
//
//   npm run build && npm start
//   curl -i http://127.0.0.1:{{port}}/
//
// The SDK's HTTP server ("wasmux/http") does the protocol: it parses each
// request as its bytes arrive, checks it (a malformed, oversized or stalled
// request gets its 4xx and the connection is closed), keeps connections
// alive, answers pipelined requests in order, and calls handle() once per
// complete request with its body whole. This file is only what to answer.

import { Context, serve } from "wasmux";
import { HttpApp, HttpOptions, Method, Request, Response, serveHttp } from "wasmux/http";
// The functions the host calls (run, cabi_realloc): every plugin re-exports them.
export * from "wasmux/entry";

class App extends HttpApp {
  handle(req: Request, res: Response): void {
    // pathIs compares without allocating; path and query make strings.
    if (req.pathIs("/")) {
      if (req.method == Method.GET || req.method == Method.HEAD) res.text(200, "Hello from {{name}}!\n");
      else res.error(405, "use GET");
    } else if (req.pathStartsWith("/hello/")) {
      res.text(200, "Hello, " + req.path.substring(7) + "!\n");
    } else if (req.pathIs("/echo")) {
      if (req.method == Method.POST) res.text(200, req.text);
      else res.error(405, "use POST");
    } else if (req.pathIs("/headers")) {
      const agent = req.header("user-agent");
      res.header("Cache-Control", "no-store");
      res.json(200, "{\"userAgent\":" + (agent === null ? "null" : quote(agent)) + "}\n");
    } else {
      res.error(404, "no such path");
    }
  }
}

/** `s` as a JSON string. */
function quote(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 34 || c == 92) out += "\\" + String.fromCharCode(c);
    else if (c < 32) out += "\\u00" + (c < 16 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

// run(): called once per instance. --config sets the server's limits
// (idle-ms, max-body, max-header, max-uri, ...: see HttpOptions), e.g.
// `wasmux run build/{{name}}.wasm --listen 127.0.0.1:{{port}} --config max-body=65536`.
serve((ctx: Context): string | null => {
  const options = new HttpOptions();
  const err = options.parse(ctx.config);
  if (err !== null) return err;
  return serveHttp(ctx, new App(), options);
});
