// npm run bench:chaos: two scenarios, `blackhole` then `faithful`. CHAOS_SCENARIO=blackhole or
// CHAOS_SCENARIO=faithful runs one alone (blackhole alone takes over a minute).
// `blackhole`: the orders handlers, with the deployed defaults
// (29 s invocation timeout, the library's own timeouts), serve 10 callers over 5 tenants while the
// database stops answering for 5 s and then for 40 s (SIGSTOP on the postmaster and every backend,
// as a Multi-AZ failover or a partition looks from the client). Prints, per outage, the slowest
// answer against the invocation's deadline, answers by status, Lambda timeouts and the time to the
// first success after recovery; writes bench/results/chaos-<timestamp>.json.
// `faithful` (chaos-faithful.ts): freezes as Lambda makes them, the environment's network link
// dropping everything both ways; failures per freeze length and the first read after a thaw against
// a warm one; writes bench/results/chaos-faithful-<timestamp>.json. Needs root, ip and tc, else
// says it is skipped and why. Not a test.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { committedReferences, runBlackhole, succeeded } from '../test/support/blackhole-load'
import { handlerWorld, type WorldModules } from '../test/support/handler-world'
import { bundled } from './bundled-handlers'
import { faithful } from './chaos-faithful'
import { progress } from './progress'

const TENANTS = Array.from({ length: 5 }, (_, t) => `b${t}`)
const CALLERS = 10
// serverless.yml's function timeout, and the middleware's default margin to answer within it.
const INVOCATION_MS = 29_000
const ANSWER_MARGIN_MS = 1_000
const OUTAGES_MS = [5_000, 40_000]

// The handlers, with the provisioning and registry functions of the same module instance.
const bundledModules = () =>
  bundled<WorldModules>([
    "export * as handlers from './functions/http/orders/handlers'",
    "export { migrateMaster, provisionTenant } from './functions/admin/provision'",
    "export { getTenantPools, resetTenantPools } from './lib'",
  ])

async function blackhole(): Promise<void> {
  const world = await handlerWorld(TENANTS, { TENANT_POOLS_APP_NAME_PREFIX: 'bench-chaos' }, bundledModules)
  const rows: Record<string, Record<string, string | number>> = {}
  const results: Record<string, unknown>[] = []
  try {
    for (const outageMs of OUTAGES_MS) {
      progress(`blackhole: an outage of ${outageMs} ms`)
      const run = await runBlackhole({
        handlers: world.handlers,
        server: world.server,
        tenants: TENANTS,
        callers: CALLERS,
        invocationMs: INVOCATION_MS,
        beforeMs: 2_000,
        freezeMs: outageMs,
        afterMs: 5_000,
      })
      const { outcomes, thawedAt, backAt } = run
      const byStatus: Record<string, number> = {}
      for (const o of outcomes) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1
      const slowest = Math.max(...outcomes.map((o) => o.tookMs))
      const lambdaTimeouts = outcomes.filter((o) => o.tookMs >= INVOCATION_MS).length
      const failedAfterBack = outcomes.filter((o) => backAt !== undefined && o.at > backAt && !succeeded(o))
      const missingRetryAfter = outcomes.filter((o) => o.status >= 500 && o.retryAfter === undefined).length
      const count = await committedReferences(world.server.url, TENANTS)
      const lost = outcomes.filter((o) => o.reference && succeeded(o) && count.get(o.reference) !== 1).length
      const duplicated = [...count.values()].filter((n) => n > 1).length
      const result = {
        outageMs,
        calls: outcomes.length,
        byStatus,
        slowestMs: slowest,
        deadlineMs: INVOCATION_MS - ANSWER_MARGIN_MS,
        invocationMs: INVOCATION_MS,
        lambdaTimeouts,
        firstSuccessAfterThawMs: backAt === undefined ? null : backAt - thawedAt,
        failedAfterFirstSuccess: failedAfterBack.map((o) => ({
          startedAfterItMs: o.at - (backAt ?? 0),
          tookMs: o.tookMs,
          status: o.status,
          code: o.code,
        })),
        missingRetryAfter,
        acknowledgedWritesLost: lost,
        duplicatedWrites: duplicated,
      }
      results.push(result)
      rows[`${outageMs / 1000} s outage`] = {
        calls: outcomes.length,
        'by status': Object.entries(byStatus)
          .map(([s, n]) => `${n}×${s}`)
          .join(' '),
        'slowest / answer-by / invocation (ms)': `${slowest} / ${result.deadlineMs} / ${INVOCATION_MS}`,
        'Lambda timeouts': lambdaTimeouts,
        'first success after thaw (ms)': result.firstSuccessAfterThawMs ?? 'none',
        'failed after it': failedAfterBack.length,
        'writes lost / duplicated': `${lost} / ${duplicated}`,
      }
      // Let connections abandoned by the outage close before the next one.
      await new Promise((r) => setTimeout(r, 3_000))
    }
  } finally {
    await world.end()
  }
  console.table(rows)
  const at = new Date().toISOString()
  const dir = join(__dirname, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `chaos-${at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(
    file,
    `${JSON.stringify({ at, node: process.version, callers: CALLERS, tenants: TENANTS.length, results }, null, 2)}\n`,
  )
  console.log(`wrote ${file}`)
}

const SCENARIOS: Record<string, () => Promise<void>> = { blackhole, faithful }

async function main(): Promise<void> {
  const only = process.env.CHAOS_SCENARIO
  if (only !== undefined && !(only in SCENARIOS))
    throw new Error(
      `CHAOS_SCENARIO=${only}: unknown; use ${Object.keys(SCENARIOS).join(' or ')}, or unset it for all`,
    )
  for (const [name, run] of Object.entries(SCENARIOS)) if (only === undefined || only === name) await run()
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
