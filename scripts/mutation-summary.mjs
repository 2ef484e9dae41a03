// Prints `npm run mutate` reports (reports/mutation.json by default; several runs' reports may be
// named, a later one's file replacing an earlier one's) as markdown: the score per file, then every
// mutant that survived or that no test reached, with its line and replacement, for
// bench/results/mutation.md. Scores count Killed and Timeout as detected, over every mutant that is
// valid (compile errors and Ignored left out), as Stryker's "total" does.
import { readFileSync } from 'node:fs'

const paths = process.argv.length > 2 ? process.argv.slice(2) : ['reports/mutation.json']
const files = Object.assign({}, ...paths.map((p) => JSON.parse(readFileSync(p, 'utf8')).files))
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
