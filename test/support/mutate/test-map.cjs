// What `npm run mutate`'s jest learns in Stryker's first run (every test, no mutant active) and
// uses for each mutant after it: which file holds each test, and how long the test took.
//
// Stryker's jest runner runs a mutant's covering tests by name only (--testNamePattern), so jest
// still loads every test file, and it turns jest's bail off: a mutant the first test kills still
// runs all the others. Both cost minutes per mutant on the core. The test map lets the sequencer
// load only the files that hold a covering test, and the environment skip the rest of a run once
// a test has failed. Neither can hide a failure: a test that does run still fails the run.
const fs = require('node:fs')
const path = require('node:path')

// In the sandbox root, which every Stryker test runner process shares.
const MAP_FILE = path.resolve(__dirname, '../../../.mutate-test-map.json')

/** The id of the mutant this process is testing, or undefined in the first run. */
const activeMutant = () => process.env.__STRYKER_ACTIVE_MUTANT__

/** The name jest matches --testNamePattern against: describe titles and the test's, spaced. */
const testId = (test) => {
  const titles = [test.name]
  for (let block = test.parent; block?.parent; block = block.parent) titles.unshift(block.name)
  return titles.join(' ')
}

/** @typedef {{name: string, file: string, ms: number}} MappedTest Names repeat across files. */
/**
 * @typedef {{tests: MappedTest[], overheadMs: Record<string, number>}} TestMap `overheadMs`: a
 * file's time outside its tests (loading it, its beforeAll and afterAll hooks), paid by any run of it.
 */

/** @type {TestMap | undefined} */
let loaded

/** The map the first run wrote, or undefined when there is none (then nothing is narrowed). */
const readMap = () => {
  if (loaded === undefined && fs.existsSync(MAP_FILE)) loaded = JSON.parse(fs.readFileSync(MAP_FILE, 'utf8'))
  return loaded
}

/** @param {TestMap} map */
const writeMap = (map) => fs.writeFileSync(MAP_FILE, JSON.stringify(map))

module.exports = { activeMutant, testId, readMap, writeMap }
