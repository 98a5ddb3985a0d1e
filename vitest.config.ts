import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Windows' Node under wine, for the IOCP tests (skipped, with the reason,
    // without wine); on Linux the kqueue stand-in (test/stand-ins/kqueue/),
    // for the kqueue backend's tests.
    globalSetup: ['test/global-setup-wine.ts', 'test/global-setup-kqueue.ts'],
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
    projects: [
      // Everything, on the platform's native backend (auto).
      { extends: true, test: { name: 'native', include: ['test/**/*.test.ts'] } },
      // The sandbox, abuse and protocol suites again on poll(2): the policy,
      // the supervisor and the plugins must hold on every backend, not only
      // the native one (the conformance suite already runs every backend).
      {
        extends: true,
        test: {
          name: 'poll',
          include: ['test/{hostile,abuse,http,resp,ws,proxy}/**/*.test.ts', 'test/echo.test.ts', 'test/connections.test.ts'],
          // proxy/valid.test.ts and proxy/cli.test.ts run every backend themselves; parser and sim open no socket.
          exclude: [
            '**/backends.test.ts',
            '**/cli-neighbour.test.ts',
            'test/ws/codecs.test.ts',
            'test/proxy/valid.test.ts',
            'test/proxy/parser.test.ts',
            'test/proxy/cli.test.ts',
            'test/proxy/sim.test.ts',
          ],
          env: { WASMUX_TEST_BACKEND: 'poll' },
        },
      },
    ],
  },
});
