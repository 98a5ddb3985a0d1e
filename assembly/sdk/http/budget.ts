// Memory for request bodies, shared by every connection of the instance.
//
// Bodies are buffered whole (a route sees its body complete), and an
// instance's memory is capped (64 MiB by default). max-body bounds one
// request, not the sum: forty clients uploading 1 MiB at once would exhaust
// the instance, and an allocation that fails traps it, dropping every
// connection. So bodies draw from one budget (body-budget, options.ts); a
// request that would overdraw it is answered 503 with Retry-After instead.
//
// A connection repays what it drew once the response is sent and the big
// buffers the body needed are given back (server.ts), so the budget bounds
// the memory really in use, not just the bytes of bodies being received:
// buffering a body of n bytes and echoing it takes up to about 4n (buffers
// grow by doubling).

/** The instance's budget; each connection's parser draws from it (Parser.held). */
export class BodyBudget {
  constructor(public available: i64) {}
}
