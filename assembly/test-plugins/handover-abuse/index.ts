// handover-abuse: a guest that misuses handover.give when it is drained.
// It accepts connections on its first address; when its listener reports
// hang-up (a reload), it gives: a handle never issued, its listener, the
// first connection (ok) and that one again, the second with a state one
// byte over the policy's bound (config: `bound=<n>`); it adopts on a
// stream and on the handle it gave away; and, last, it gives a state
// whose list runs past the end of its memory (a trap: its own end). Each
// result is logged as "give|adopt <what> -> <result>".
//
// Used by test/handover/abuse.test.ts.
import { Context, Events, Interest, Poll, TcpListener, TcpStream, errorName, info, lastError, serve } from "../../sdk";
import { adoptError, adoptOn, giveStream } from "../../sdk/handover";
import { handover_give } from "../../sdk/bindings";
import { RET, unitResult } from "../../sdk/abi";
export * from "../../sdk/entry";

function result(rc: i32): string {
  return rc == 0 ? "ok" : "err " + errorName(rc);
}

serve((ctx: Context): string | null => {
  const listener = TcpListener.bind(ctx.listen[0]);
  if (listener === null) return "listen failed: " + errorName(lastError());
  const bound = I32.parseInt(ctx.config.startsWith("bound=") ? ctx.config.substring(6) : "65536");
  const poll = new Poll();
  const events = new Events(16);
  poll.register(listener, 0, Interest.READABLE);
  const conns: TcpStream[] = [];
  info("ready");
  for (let turn = 0; turn < 1_000_000; turn++) {
    const n = poll.poll(events, -1);
    for (let i: u32 = 0; i < n; i++) {
      if (events.token(i) != 0) continue;
      if (!events.isHangUp(i)) {
        for (let s = listener.accept(); s !== null; s = listener.accept()) conns.push(s);
        continue;
      }
      // Drained: the abuse.
      const empty = new ArrayBuffer(8); // the SDK's format: no input, no output, no protocol state
      const p = changetype<usize>(empty);
      handover_give(0x7fffff00, p, 8, RET);
      info("give never-issued -> " + result(unitResult()));
      info("give listener -> " + result(giveStream(changetype<TcpStream>(listener), p, 8)));
      if (conns.length < 2) return "abuse needs two connections";
      info("give first -> " + result(giveStream(conns[0], p, 8)));
      info("give first again -> " + result(giveStream(conns[0], p, 8)));
      const big = new ArrayBuffer(bound + 1);
      info("give second over the bound -> " + result(giveStream(conns[1], changetype<usize>(big), bound + 1)));
      // adopt on what is not a listener.
      const a = adoptOn(changetype<TcpListener>(conns[1]));
      info("adopt on a stream -> " + (a === null ? "err " + errorName(adoptError()) : "ok"));
      const b = adoptOn(changetype<TcpListener>(conns[0])); // given away: no longer its handle
      info("adopt on a given handle -> " + (b === null ? "err " + errorName(adoptError()) : "ok"));
      // The list runs past the end of linear memory: the host traps this instance.
      info("give out of bounds");
      handover_give(conns[1].handle, <usize>(memory.size() << 16) - 4, 64, RET);
      info("still here after an out-of-bounds give: " + result(unitResult()));
    }
  }
  return null;
});
