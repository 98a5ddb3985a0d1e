/**
 * The backend the in-process suites serve their plugins on. vitest.config.ts
 * runs the sandbox and protocol suites a second time with
 * WASMUX_TEST_BACKEND=poll, so they hold on poll(2) as well as on the
 * platform's native backend (`auto`).
 */
export const BACKEND_UNDER_TEST = process.env.WASMUX_TEST_BACKEND ?? 'auto';

/** Throws unless a server really runs on the backend under test (guards the env plumbing). */
export function assertBackend(actual: string): void {
  if (BACKEND_UNDER_TEST !== 'auto' && actual !== BACKEND_UNDER_TEST) {
    throw new Error(`expected the server on backend ${BACKEND_UNDER_TEST}, it runs on ${actual}`);
  }
}
