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

export class BodyBudget {
  constructor(public available: i64) {}
}

/** One connection's draw on the budget. */
export class BodyAccount {
  /** Bytes drawn and not yet repaid. */
  held: i64 = 0;

  constructor(private readonly budget: BodyBudget) {}

  /** Draws `n` bytes; false (and nothing drawn) when the budget cannot cover them. */
  draw(n: i64): bool {
    if (n > this.budget.available) return false;
    this.budget.available -= n;
    this.held += n;
    return true;
  }

  /** Gives back everything drawn. */
  repay(): void {
    this.budget.available += this.held;
    this.held = 0;
  }
}
