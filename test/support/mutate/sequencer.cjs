// The test sequencer of `npm run mutate` (see test-map.cjs). For a mutant's run it keeps only the
// test files that hold one of the tests Stryker asks for, cheapest first (the file's own overhead
// and the time of the tests asked for in it), so that a killing test is reached soon. Without a
// map, or if no file matches, it keeps every file: narrowing must never turn a run into one that
// executes nothing (which Stryker would count as a survivor).
const Sequencer = require('@jest/test-sequencer').default
const { activeMutant, readMap } = require('./test-map.cjs')

class MutateSequencer extends Sequencer {
  #pattern

  constructor(options) {
    super(options)
    const { testNamePattern } = options.globalConfig
    // jest matches names case-insensitively too.
    this.#pattern = testNamePattern ? new RegExp(testNamePattern, 'i') : undefined
  }

  sort(tests) {
    // The first run (no mutant) writes the map: it neither reads it nor narrows.
    const map = activeMutant() === undefined || this.#pattern === undefined ? undefined : readMap()
    if (map === undefined) return super.sort(tests)
    const cost = new Map()
    for (const { name, file, ms } of map.tests) {
      if (this.#pattern.test(name)) cost.set(file, (cost.get(file) ?? map.overheadMs[file] ?? 0) + ms)
    }
    const kept = tests.filter((test) => cost.has(test.path))
    if (kept.length === 0) return super.sort(tests)
    return kept.sort((a, b) => cost.get(a.path) - cost.get(b.path))
  }
}

module.exports = MutateSequencer
