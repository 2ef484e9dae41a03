// Makes the next incremental `npm run mutate` re-test the mutants a jest test timeout (or a lost
// test server) killed: it removes them from an incremental file, so Stryker takes them for new ones.
// Used with a longer MUTATE_TEST_TIMEOUT_MS, to tell a mutant that hangs from a test the machine's
// load slowed down.
//   node scripts/mutation-forget.mjs reports/tenant-pools.incremental.json
import { readFileSync, writeFileSync } from 'node:fs'

// A test timeout; or a test server gone (refused connections, a replica's copy of its folder
// failing, or the pool's ConnectError wrapping such a refusal), as when replica-sweep.cjs once
// stopped the main server mid-run: every later mutant was "killed". A refusal a test meant (a
// closed port) is simply killed again.
const suspect = /Exceeded timeout|ECONNREFUSED|Command failed: cp -a|Could not open a connection/

const [path] = process.argv.slice(2)
if (!path) throw new Error('usage: node scripts/mutation-forget.mjs <incremental file>')
const report = JSON.parse(readFileSync(path, 'utf8'))
let forgotten = 0
for (const file of Object.values(report.files)) {
  const kept = file.mutants.filter((m) => !(m.status === 'Killed' && suspect.test(m.statusReason ?? '')))
  forgotten += file.mutants.length - kept.length
  file.mutants = kept
}
writeFileSync(path, JSON.stringify(report))
console.log(`${forgotten} mutants killed by a test timeout or a lost test server will be tested again`)
