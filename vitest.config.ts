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
    // One file at a time. On two cores, a load test in one file (100,000
    // connects, an 8 MiB echo, a spinning hostile guest) starves the timing
    // checks of another (a wait within ±20 ms, a stop within 100 ms, a kill
    // within budget + 100 ms). The suite takes longer; it stops being noisy.
    fileParallelism: false,
    maxWorkers: 1,
    // The JSON file is what .ci/run counts from (it prints "N passed, N failed").
    reporters: ['default', ['json', { outputFile: '.cache/test-results.json' }]],
  },
});
