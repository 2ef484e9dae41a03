// The test environment of `npm run mutate` (see test-map.cjs). In the first run it records each
// test's file and time; in a mutant's run, once one test has failed (the mutant is killed), it
// skips every test after it, in this file and the next ones, instead of running them for nothing.
const { TestEnvironment } = require('jest-environment-node')
const { sweepReplicas } = require('../replica-sweep.cjs')
const { activeMutant, testId, writeMap } = require('./test-map.cjs')

// Module state lives as long as the Stryker test runner process: jest loads this file once and
// runs every test file of every mutant in band, in that process.
/** @type {import('./test-map.cjs').TestMap} */
const recorded = { tests: [], overheadMs: {} }
let killedMutant
const started = new Map()

const skipAll = (block) => {
  for (const child of block.children) {
    if (child.type === 'describeBlock') skipAll(child)
    else child.mode = 'skip'
  }
}

class MutateEnvironment extends TestEnvironment {
  #testPath
  #began = Date.now()
  #testsMs = 0

  constructor(config, context) {
    super(config, context)
    this.#testPath = context.testPath
  }

  /** @param {import('jest-circus').Event} event */
  async handleTestEvent(event, state) {
    const mutant = activeMutant()
    if (mutant === undefined) return this.#record(event)
    // A whole file skipped before it starts also skips its beforeAll hooks.
    if (event.name === 'run_start' && killedMutant === mutant) skipAll(state.rootDescribeBlock)
    if (event.name === 'test_start' && killedMutant === mutant) event.test.mode = 'skip'
    if (event.name === 'test_done' && event.test.errors.length > 0) killedMutant = mutant
  }

  #record(event) {
    if (event.name === 'test_start') started.set(event.test, Date.now())
    if (event.name === 'test_done') {
      const ms = Date.now() - (started.get(event.test) ?? Date.now())
      recorded.tests.push({ name: testId(event.test), file: this.#testPath, ms })
      this.#testsMs += ms
      started.delete(event.test)
    }
  }

  async teardown() {
    // A mutant can make a test's own clean-up fail; its replica must not outlive the file.
    sweepReplicas({ mine: true })
    if (activeMutant() === undefined) {
      recorded.overheadMs[this.#testPath] = Date.now() - this.#began - this.#testsMs
      writeMap(recorded)
    }
    await super.teardown()
  }
}

module.exports = MutateEnvironment
