import { Main } from "./context";

// The plugin's main function, called by the `run` export (entry.ts).
export let mainFn: Main | null = null;

/** Declares the plugin's main function. Call once, at the top level of index.ts. */
export function serve(main: Main): void {
  mainFn = main;
}
