// Jest as `npm run mutate` runs it: the unit and integration tests (the e2e tests start whole
// stacks, which mutation testing cannot instrument), each test's coverage told to Stryker.
const base = require('./jest.config.js')

/** @type {import('jest').Config} */
module.exports = {
  ...base,
  roots: ['<rootDir>/test/unit', '<rootDir>/test/integration'],
  ...(process.env.MUTATE_TESTS ? { testMatch: process.env.MUTATE_TESTS.split(',') } : {}),
}
