// npm run mutate: StrykerJS over the pool, registry and credentials layers (issue 15). Not part of
// CI (too slow on a 2-core machine); incremental, so a re-run after a small change only tries the
// mutants it touches. MUTATE narrows what is mutated (MUTATE=lib/pool/budget.ts npm run mutate),
// MUTATE_TESTS which tests run (globs, e.g. '**/test/pool/**/*.test.ts').
// MUTATE_RUN names a run's own report and incremental file (reports/<name>.json), so that runs of
// different files can go side by side without one's results overwriting the other's.
const run = process.env.MUTATE_RUN

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: (process.env.MUTATE ?? 'lib/pool/**/*.ts,lib/registry/**/*.ts,lib/credentials/**/*.ts').split(','),
  testRunner: 'jest',
  // Related tests are not found through lib/index.ts's re-exports: every test runs once, with
  // per-test coverage, and each mutant then runs only the tests that reach it.
  jest: { configFile: 'jest.mutate.config.js', enableFindRelatedTests: false },
  coverageAnalysis: 'perTest',
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  incremental: true,
  incrementalFile: run ? `reports/${run}.incremental.json` : 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'json', 'progress'],
  jsonReporter: { fileName: run ? `reports/${run}.json` : 'reports/mutation.json' },
  // Three processes: TypeScript checkers first, test runners once the checking is done. The
  // integration tests share the embedded servers, as jest's two workers do.
  concurrency: 3,
  // Most code here also runs outside any test (an afterEach ending the pools, a beforeAll warming
  // them), which Stryker calls static: such a mutant would run every test, a minute each. A mutant
  // that tests also reach runs only those tests; one that no test reaches (module constants, code
  // only hooks run) is reported as Ignored. MUTATE_STATIC=1 tests those too, with every test.
  ignoreStatic: process.env.MUTATE_STATIC !== '1',
  // A mutant that makes a call wait forever is detected at the timeout: its tests' own time × 1.5
  // plus this, not a minute each.
  timeoutMS: 15_000,
  tempDirName: '.stryker-tmp',
}
