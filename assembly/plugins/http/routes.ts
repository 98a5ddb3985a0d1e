// What the server answers. One function: match the path, then the method.
//
//   GET|HEAD /       a fixed greeting (the benchmark route)
//   POST /echo       the request body, as sent (decoded when chunked)
//   GET|HEAD /stats  this instance's counters as JSON (the SDK's httpStats)
//   GET|HEAD /ip     the client's address as text, without the port
//                    ("203.0.113.7\n"; behind a proxy and a listener with
//                    --proxy-protocol, the client the proxy named)
//   OPTIONS *        200 with the methods the server knows
//   CONNECT ...      501: this is not a proxy
//   other methods    501 (ANNOUNCE, BREW...: methods this server does not know)
//   anything else    404; a known path with another method: 405 with Allow
//
// Paths match exactly, the query ignored ("/?x=1" is "/"), with no
// percent-decoding.

import { ByteBuffer } from "../../sdk";
import { APPLICATION_JSON, HttpApp, Method, OCTET_STREAM, Request, Response, TEXT_PLAIN, Text, httpStats } from "../../sdk/http";

const HELLO = new Text("Hello, wasmux!\n");
const EMPTY = new Text("");
const ALLOW_GET = new Text("GET, HEAD");
const ALLOW_POST = new Text("POST");
const ALLOW_ANY = new Text("GET, HEAD, POST, OPTIONS");

// Scratch space for the /stats body (its length goes in the head, before it).
const scratch = new ByteBuffer(256);

export class Routes extends HttpApp {
  handle(req: Request, res: Response): void {
    const m = req.method;
    if (m == Method.OTHER) {
      // A method this server does not know at all (RFC 9110 §15.6.2), whatever the path.
      res.error(501, "method not implemented");
    } else if (m == Method.CONNECT) {
      res.error(501, "CONNECT is not supported");
    } else if (req.pathIs("/")) {
      if (m == Method.GET || m == Method.HEAD) res.sendText(200, TEXT_PLAIN, HELLO);
      else res.methodNotAllowed(ALLOW_GET);
    } else if (req.pathIs("/echo")) {
      if (m == Method.POST) res.send(200, OCTET_STREAM, req.bodyPtr, req.bodyLength);
      else res.methodNotAllowed(ALLOW_POST);
    } else if (req.pathIs("/stats")) {
      if (m == Method.GET || m == Method.HEAD) {
        scratch.clear();
        httpStats.writeJson(scratch);
        res.send(200, APPLICATION_JSON, scratch.ptr, scratch.length);
      } else {
        res.methodNotAllowed(ALLOW_GET);
      }
    } else if (req.pathIs("/ip")) {
      if (m == Method.GET || m == Method.HEAD) {
        const peer = req.peerAddress();
        if (peer == null) {
          res.error(500, "the client's address is unknown");
        } else {
          const body = String.UTF8.encode(peer.ipText() + "\n");
          res.send(200, TEXT_PLAIN, changetype<usize>(body), body.byteLength);
        }
      } else {
        res.methodNotAllowed(ALLOW_GET);
      }
    } else if (m == Method.OPTIONS && req.pathIs("*")) {
      res.allow = ALLOW_ANY;
      res.sendText(200, TEXT_PLAIN, EMPTY);
    } else {
      res.error(404, "no such path");
    }
  }
}
