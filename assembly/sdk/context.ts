import { SocketAddress } from "./net";

/** What the host passed to this instance (the WIT `context` record). */
export class Context {
  constructor(
    /** The `--config` string, as given (empty when absent). */
    readonly config: string,
    /** The addresses to serve (`--listen`); the policy allows exactly these. */
    readonly listen: SocketAddress[],
    /** This instance's number among the plugin's workers, from 0. */
    readonly instance: u32,
  ) {}
}

/** A plugin's main function: runs the event loop; returns null or an error message. */
export type Main = (ctx: Context) => string | null;
