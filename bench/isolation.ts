// npm run bench:isolation: the isolation property (test/support/isolation-property.ts) at length,
// 10,000 runs (ISOLATION_RUNS) per server and connection count: the embedded PostgreSQL 18 (or
// DATABASE_URL) and Debian's PostgreSQL 15 (TEST_PG15_URL, else started here). Prints, for each,
// the runs, the actions they took, how the attacks fared and the time; writes
// bench/results/isolation-<timestamp>.json. Exits non-zero on the first counterexample. Not a test.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { debianPostgresBin, startDebianPostgres } from '../scripts/debian-postgres.mjs'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { checkIsolation } from '../test/support/isolation-property'
import { progress } from './progress'

const RUNS = Number(process.env.ISOLATION_RUNS ?? 10_000)

interface Server {
  name: string
  url: string
  stop?: () => Promise<void>
}

async function servers(): Promise<Server[]> {
  const list: Server[] = []
  if (process.env.DATABASE_URL)
    list.push({ name: 'PostgreSQL (DATABASE_URL)', url: process.env.DATABASE_URL })
  else {
    const s = await startEmbeddedPostgres({ database: 'tenant_pools_isolation' })
    list.push({ name: 'PostgreSQL 18 (embedded)', url: s.url, stop: () => s.stop() })
  }
  if (process.env.TEST_PG15_URL) list.push({ name: 'PostgreSQL 15', url: process.env.TEST_PG15_URL })
  else if (debianPostgresBin(15)) {
    const s = await startDebianPostgres({ major: 15, database: 'tenant_pools_isolation' })
    list.push({ name: 'PostgreSQL 15 (Debian)', url: s.url, stop: () => s.stop() })
  } else {
    process.stderr.write(
      'PostgreSQL 15 is not installed: apt-get install -y postgresql-15. Its runs are SKIPPED.\n',
    )
  }
  return list
}

async function main(): Promise<void> {
  const list = await servers()
  const rows: Record<string, Record<string, string | number>> = {}
  const results: Record<string, unknown>[] = []
  let failed: unknown
  try {
    for (const server of list) {
      for (const connections of [1, 2]) {
        progress(`${server.name}, ${connections} connection(s)`)
        const started = process.hrtime.bigint()
        const key = `${server.name}, ${connections} connection(s)`
        try {
          const { runs, actions, attacks } = await checkIsolation({
            url: server.url,
            connections,
            numRuns: RUNS,
          })
          const seconds = Number(process.hrtime.bigint() - started) / 1e9
          rows[key] = {
            runs,
            actions,
            'attack statements ok': attacks.succeeded,
            'attack statements failed': attacks.failed,
            seconds: Number(seconds.toFixed(1)),
            result: 'held',
          }
          results.push({ server: server.name, connections, runs, actions, attacks, seconds, held: true })
        } catch (err) {
          rows[key] = { result: 'BROKEN' }
          results.push({ server: server.name, connections, held: false, error: String(err) })
          failed = err
          break
        }
      }
      if (failed) break
    }
  } finally {
    for (const server of list) await server.stop?.()
  }
  console.log(`isolation property: ${RUNS} runs per server and connection count`)
  console.table(rows)
  const dir = join(__dirname, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `isolation-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, `${JSON.stringify({ runsEach: RUNS, results }, null, 2)}\n`)
  console.log(`wrote ${file}`)
  if (failed) {
    console.error(failed)
    process.exitCode = 1
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
