/** Tests run offline: real local servers over loopback, no AWS, no Docker. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // zod's CommonJS entry is bundled into one module there (as client-node's is): .cjs files are otherwise not transformed.
  transform: { '[\\\\/]node_modules[\\\\/]zod[\\\\/]index\\.cjs$': '<rootDir>/test/esbuild-transform.cjs', '\\.(ts|js|mjs)$': '<rootDir>/test/esbuild-transform.cjs' },
  // Big CommonJS trees are left alone; the rest goes through the transformer, which only rewrites ESM.
  transformIgnorePatterns: ['/node_modules/(aws-cdk-lib|@aws-sdk|@smithy|@tensorflow|@aws-crypto|typescript|constructs)/'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  testTimeout: 60000,
  // Tests within each file run in a random order (issue 8): each test sets up what it reads, and a test that
  // leans on an earlier one fails here rather than some day. The seed is printed; `npx jest --seed=<n>`
  // replays an order.
  randomize: true,
  showSeed: true,
  // Most suites wait on local servers and child processes: two workers keep both cores busy.
  maxWorkers: 2,
  // A worker that has nothing left open still takes a while to end on a busy 2-core host: measured after its
  // 'exit' event, with no handle left, 0.5-0.6 s for the bundles and lifecycle-kill workers (their heaps are the
  // largest: 200-280 MB), 0.2-0.4 s for a trivial one. Past the default 500 ms Jest kills it and says "failed to
  // exit gracefully", a leak warning where there is no leak. A real leak (an open handle) keeps a worker up for
  // good, and is still reported after this.
  workerGracefulExitTimeout: 2000,
  setupFiles: ['<rootDir>/test/setup-settings.ts', '<rootDir>/test/setup-cdk.ts'],
  // Slowest first, also on a fresh clone: a file is sized with the *.cases.ts files it imports (test/cdk).
  testSequencer: '<rootDir>/test/sequencer.cjs',
};
