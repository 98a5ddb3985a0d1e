import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Windows' Node under wine, for the IOCP tests (skipped, with the reason, without wine).
    globalSetup: ['test/global-setup-wine.ts'],
    // Each file in its own process: worker threads, koffi and sockets of one
    // file never meet another's, and the fd counts a test takes are its own.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 30_000,
    // Two cores: two files at a time keeps load tests from starving each other.
    maxWorkers: 2,
    // The JSON file is what .ci/run counts from (it prints "N passed, N failed").
    reporters: ['default', ['json', { outputFile: '.cache/test-results.json' }]],
  },
});
