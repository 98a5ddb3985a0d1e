// What the server answers. One function: match the path, then the method.
//
//   GET|HEAD /       a fixed greeting (the benchmark route)
//   POST /echo       the request body, as sent (decoded when chunked)
//   GET|HEAD /stats  this instance's counters as JSON (stats.ts)
//   OPTIONS *        200 with the methods the server knows
//   CONNECT ...      501: this is not a proxy
//   anything else    404; a known path with another method: 405 with Allow
//
// Paths match exactly, the query ignored ("/?x=1" is "/"), with no
// percent-decoding.

import { ByteBuffer } from "../../sdk";
import { equalsAscii } from "../../sdk/ascii";
import { Method, Request } from "./parser";
import { APPLICATION_JSON, OCTET_STREAM, Response, TEXT_PLAIN, Text } from "./response";
import { stats } from "./stats";

const HELLO = new Text("Hello, wasmux!\n");
const EMPTY = new Text("");
const ALLOW_GET = new Text("GET, HEAD");
const ALLOW_POST = new Text("POST");
const ALLOW_ANY = new Text("GET, HEAD, POST, OPTIONS");

// Scratch space for the /stats body (its length goes in the head, before it).
const scratch = new ByteBuffer(256);

export function route(req: Request, res: Response): void {
  const path = req.target.ptr;
  const len = req.pathLength;
  const m = req.method;
  if (m == Method.CONNECT) {
    res.error(501, "CONNECT is not supported");
  } else if (equalsAscii(path, len, "/")) {
    if (m == Method.GET || m == Method.HEAD) res.sendText(200, TEXT_PLAIN, HELLO);
    else res.methodNotAllowed(ALLOW_GET);
  } else if (equalsAscii(path, len, "/echo")) {
    if (m == Method.POST) res.send(200, OCTET_STREAM, req.bodyPtr, req.bodyLength);
    else res.methodNotAllowed(ALLOW_POST);
  } else if (equalsAscii(path, len, "/stats")) {
    if (m == Method.GET || m == Method.HEAD) {
      scratch.clear();
      stats.writeJson(scratch);
      res.send(200, APPLICATION_JSON, scratch.ptr, scratch.length);
    } else {
      res.methodNotAllowed(ALLOW_GET);
    }
  } else if (m == Method.OPTIONS && equalsAscii(path, len, "*")) {
    res.allow = ALLOW_ANY;
    res.sendText(200, TEXT_PLAIN, EMPTY);
  } else {
    res.error(404, "no such path");
  }
}
