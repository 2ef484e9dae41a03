// Jest as `npm run mutate` runs it: every test but test/e2e (the e2e tests start whole stacks,
// which mutation testing cannot instrument), each test's coverage told to Stryker.
// Left out by default: the tests that spend their time waiting (a restart, a freeze, a rotation, a
// black hole; 10 to 30 s each). Every mutant reached by one of them would wait as long, which makes
// a whole run take a day on two cores. MUTATE_TESTS (globs) puts them back for a narrow run.
const path = require('node:path')
const base = require('./jest.config.js')

const slow = [
  'registry/calls.freeze-thaw',
  'credentials/secrets-manager.rotation',
  'credentials/secrets-manager.rotation-http',
  'functions/jobs/maintenance/run',
  'registry/checkout.chaos-restart',
  'pool/login-pool.too-many',
  'registry/calls.blackhole',
]
// test/repo reads the sources as text (TSDoc, layering, documented options): Stryker's instrumented
// copy of a mutated file is not what they describe, and fails them before any mutant runs.
const notMutationTests = ['/node_modules/', '/test/e2e/', '/test/repo/']

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  // Absolute: Stryker loads the environment itself, without jest's <rootDir>. Both only narrow
  // what runs for a mutant (test/support/mutate/test-map.cjs says why).
  testEnvironment: path.join(__dirname, 'test/support/mutate/environment.cjs'),
  testSequencer: path.join(__dirname, 'test/support/mutate/sequencer.cjs'),
  ...(process.env.MUTATE_TESTS
    ? { testMatch: process.env.MUTATE_TESTS.split(','), testPathIgnorePatterns: notMutationTests }
    : {
        testPathIgnorePatterns: [
          ...notMutationTests,
          ...slow.map((name) => `/test/${name.replaceAll('.', '\\.')}\\.test\\.ts$`),
        ],
        // None of these tests takes more than 3 s unmutated (the first run's times, in the test map).
        // A mutant that makes one hang fails it at 30 s, instead of at Stryker's timeout for the
        // mutant (its tests' whole time × 1.5 + 15 s, a minute on the core). Both count as detected.
        // Not less: at 10 s, about a quarter of such kills owed more to the machine's load than to
        // the mutant. MUTATE_TEST_TIMEOUT_MS sets it; scripts/mutation-forget.mjs re-tries them.
        testTimeout: Number(process.env.MUTATE_TEST_TIMEOUT_MS ?? 30_000),
      }),
}
