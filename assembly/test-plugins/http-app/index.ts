// http-app: the SDK's HTTP server as a plugin author uses it (HttpApp,
// Request's accessors, Response's helpers), including the mistakes an app
// can make: no response, two responses, a status that cannot answer, a
// header that would forge others.
//
//   GET  /status/<code>   res.text(code, ...)
//   GET  /none            writes no response (the server answers 500)
//   GET  /twice           writes two (the second is dropped)
//   GET  /request?...     the request as the app sees it, as JSON
//   GET  /set-header      res.header() with good and bad names and values
//   POST /text            the body, through req.text and res.text
//   GET  /close           res.close = true
//
// Used by test/http/sdk-app.test.ts.
import { Context, serve } from "../../sdk";
import { HttpApp, HttpOptions, Request, Response, serveHttp } from "../../sdk/http";
export * from "../../sdk/entry";

function jsonOrNull(s: string | null): string {
  return s === null ? "null" : "\"" + s + "\"";
}

class App extends HttpApp {
  handle(req: Request, res: Response): void {
    if (req.pathStartsWith("/status/")) {
      const code = I32.parseInt(req.path.substring(8));
      res.text(code, "status " + code.toString() + "\n");
    } else if (req.pathIs("/none")) {
      // nothing
    } else if (req.pathIs("/twice")) {
      res.text(200, "first\n");
      res.text(201, "second\n");
    } else if (req.pathIs("/request")) {
      res.json(200, "{\"path\":" + jsonOrNull(req.path) + ",\"query\":" + jsonOrNull(req.query) +
        ",\"custom\":" + jsonOrNull(req.header("x-custom")) + ",\"host\":" + jsonOrNull(req.header("HOST")) +
        ",\"missing\":" + jsonOrNull(req.header("x-missing")) + "}");
    } else if (req.pathIs("/set-header")) {
      const good = res.header("X-Good", "yes");
      const badName = res.header("Bad Name", "x");
      const crlf = res.header("X-Evil", "a\r\nInjected: 1");
      const empty = res.header("", "x");
      const second = res.header("X-Also", "fine");
      res.text(200, good.toString() + "," + badName.toString() + "," + crlf.toString() + "," + empty.toString() + "," + second.toString());
    } else if (req.pathIs("/text")) {
      res.text(200, "got " + req.text);
    } else if (req.pathIs("/close")) {
      res.close = true;
      res.text(200, "bye\n");
    } else {
      res.error(404, "no such path");
    }
  }
}

serve((ctx: Context): string | null => {
  const options = new HttpOptions();
  const err = options.parse(ctx.config);
  if (err !== null) return err;
  return serveHttp(ctx, new App(), options);
});
