// CommonJS mode on purpose: in Jest's ESM mode jest.mock silently does nothing.
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': [
      '@swc/jest',
      { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
    ],
  },
  // middy 7 and kysely 0.29 ship ESM only; let swc turn them into CommonJS.
  transformIgnorePatterns: ['/node_modules/(?!(@middy|kysely)/)'],
  // Their package.json exports only an `import` condition, which jest's CommonJS resolver skips.
  moduleNameMapper: {
    '^@middy/([^/]+)$': '<rootDir>/node_modules/@middy/$1/index.js',
    '^kysely$': '<rootDir>/node_modules/kysely/dist/index.js',
  },
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  // Integration tests open real connections; two workers keep the embedded server comfortable.
  maxWorkers: 2,
  testTimeout: 60_000,
  // A run that executes no test is a failure, not a pass.
  passWithNoTests: false,
}
