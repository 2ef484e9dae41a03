// Prints `npm run mutate` reports (reports/mutation.json by default; several runs' reports may be
// named: a later one's mutant replaces an earlier one's at the same place with the same replacement,
// so that a narrow run, e.g. of module constants with MUTATE_STATIC=1, refines a wider one; a file
// whose source changed between them is taken whole from the later) as markdown: the score per file, then every
// mutant that survived or that no test reached, with its line and replacement, for
// bench/results/mutation.md. Scores count Killed and Timeout as detected, over every mutant that is
// valid (compile errors and Ignored left out), as Stryker's "total" does.
import { readFileSync } from 'node:fs'

const paths = process.argv.length > 2 ? process.argv.slice(2) : ['reports/mutation.json']
const mutantKey = ({ location: { start, end }, mutatorName, replacement }) =>
  `${start.line}:${start.column}-${end.line}:${end.column}:${mutatorName}:${replacement ?? ''}`
const files = {}
for (const report of paths.map((p) => JSON.parse(readFileSync(p, 'utf8')))) {
  for (const [file, later] of Object.entries(report.files)) {
    const earlier = files[file]
    if (earlier === undefined || earlier.source !== later.source) {
      files[file] = later
      continue
    }
    const merged = new Map(earlier.mutants.map((m) => [mutantKey(m), m]))
    for (const m of later.mutants) merged.set(mutantKey(m), m)
    files[file] = { ...later, mutants: [...merged.values()] }
  }
}
const DETECTED = new Set(['Killed', 'Timeout'])
const UNDETECTED = new Set(['Survived', 'NoCoverage'])
const rows = []
const open = []
const sum = { detected: 0, undetected: 0, ignored: 0, errors: 0 }
for (const [file, { mutants, source }] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
  const lines = source.split('\n')
  const n = { detected: 0, undetected: 0, ignored: 0, errors: 0 }
  for (const m of mutants) {
    if (DETECTED.has(m.status)) n.detected++
    else if (UNDETECTED.has(m.status)) {
      n.undetected++
      const { line, column } = m.location.start
      const code = (lines[line - 1] ?? '').trim().slice(0, 110)
      open.push(
        `- \`${file}:${line}:${column}\` ${m.status} ${m.mutatorName} → \`${String(m.replacement ?? '')
          .replace(/\s+/g, ' ')
          .slice(0, 80)}\`  \n  \`${code}\``,
      )
    } else if (m.status === 'Ignored') n.ignored++
    else n.errors++
  }
  for (const k of Object.keys(sum)) sum[k] += n[k]
  const valid = n.detected + n.undetected
  rows.push(
    `| ${file} | ${valid ? ((100 * n.detected) / valid).toFixed(2) : '–'} | ${n.detected} | ${n.undetected} | ${n.ignored} | ${n.errors} |`,
  )
}
const valid = sum.detected + sum.undetected
console.log('| file | score % | detected | survived or not reached | ignored (static) | compile errors |')
console.log('|---|---|---|---|---|---|')
console.log(rows.join('\n'))
console.log(
  `| **all** | **${((100 * sum.detected) / valid).toFixed(2)}** | ${sum.detected} | ${sum.undetected} | ${sum.ignored} | ${sum.errors} |`,
)
console.log(`\n${open.length} undetected:\n`)
console.log(open.join('\n'))
