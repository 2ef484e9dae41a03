// npm run bench:move: moving a busy tenant (issue 26), at length. Two PostgreSQL servers of its own
// (clusters main and b); for a tenant of 20,000 and of 200,000 orders, with 2 and with 10 clients
// writing through the orders API, MOVES (5) moves back and forth (test/support/busy-move.ts, the
// harness the acceptance test uses). Prints per configuration: moves that succeeded, the pause
// (first to last refused write of a move) p50/max, refused writes per move, copy and move time p50
// (of the moves that succeeded), and whatever the checks found wrong; writes
// bench/results/move-<timestamp>.json. Not a test.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { type MoveSummary, moveLine, summarize, summaryRow } from '../test/support/busy-figures'
import { type BusyModules, type BusyRun, busyEnvironment } from '../test/support/busy-move'
import { bundled } from './bundled-handlers'

const MOVES = Number(process.env.MOVES ?? 5)
const SIZES = [20_000, 200_000]
const WRITERS = [2, 10]

interface Server {
  url: string
  stop: () => Promise<void>
}

interface Result {
  orders: number
  writers: number
  summary: MoveSummary
  moves: BusyRun['moves']
  answers: BusyRun['answers']
  problems: BusyRun['problems']
}

async function main(): Promise<void> {
  const servers: Server[] = [
    await startEmbeddedPostgres({ database: 'tenant_pools_move' }),
    await startEmbeddedPostgres({ database: 'tenant_pools_move' }),
  ]
  const [onMain, onB] = servers as [Server, Server]
  // Where test/support/db.ts, and so the harness, finds the two clusters.
  process.env.DATABASE_URL = onMain.url
  process.env.TEST_CLUSTER_B_URL = onB.url
  const results: Result[] = []
  const rows: Record<string, Record<string, string>> = {}
  try {
    const env = await busyEnvironment({
      load: () =>
        bundled<BusyModules>([
          "export { create } from './functions/http/orders/handlers'",
          "export { resetTenantPools } from './lib'",
        ]),
      maxWriters: Math.max(...WRITERS),
    })
    try {
      for (const orders of SIZES) {
        for (const writers of WRITERS) {
          const label = `${orders.toLocaleString('en')} orders, ${writers} writers`
          console.log(`${label}: seeding, then ${MOVES} moves`)
          const tenantId = await env.tenant(orders)
          const run = await env.run({
            tenantId,
            writers,
            moves: MOVES,
            onMove: (m) =>
              console.log(`  #${m.index + 1} ${m.from}→${m.to} ${m.ok ? 200 : m.code} in ${m.durationMs} ms`),
          })
          // Again, now with the writes of each move.
          for (const m of run.moves) console.log(`  ${moveLine(m)}`)
          const problems = Object.values(run.problems).flat()
          for (const p of problems) console.log(`  PROBLEM ${p}`)
          const summary = summarize(run.moves)
          results.push({
            orders,
            writers,
            summary,
            moves: run.moves,
            answers: run.answers,
            problems: run.problems,
          })
          rows[label] = { ...summaryRow(summary), problems: String(problems.length) }
        }
      }
    } finally {
      await env.end()
    }
  } finally {
    for (const s of servers) await s.stop().catch(() => {})
  }
  console.table(rows)
  const at = new Date().toISOString()
  const dir = join(__dirname, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `move-${at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(
    file,
    `${JSON.stringify({ at, node: process.version, movesPerRun: MOVES, results }, null, 2)}\n`,
  )
  console.log(`wrote ${file}`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
