// npm run bench:scale-ops (issue 30, operations at thousands of tenants): on a fresh embedded
// PostgreSQL, BENCH_SCALE_OPS_TENANTS (2,000) tenants, and what operating them costs:
//   a. provisioning them through POST /admin/tenants (the real handler, API Gateway events, the admin
//      key), BENCH_SCALE_OPS_CONCURRENCY (2) calls in flight: tenants per second;
//   b. the maintenance job's full pass (migrations, purge, ANALYZE; the reaper once per invocation)
//      through its real handler, invoked until the pass is complete: once with the function's
//      configured timeout (900 s), once with invocations of 60 s + BENCH_SCALE_OPS_JOB_WINDOW_MS
//      (10 s) so that the pass must resume; invocations and total time, checked in the database;
//   c. the tenant catalog cache's heap with every tenant cached (node --expose-gc);
//   d. GET /admin/tenants walked to the end at the default and the largest page, and what a caller
//      asking for 5,000 rows gets;
//   e. the fleet view: BENCH_SCALE_OPS_ENVIRONMENTS (10) environments, BENCH_SCALE_OPS_REQUESTS (2,000)
//      requests each, tenant-pools against a shared pg.Pool per environment: the server's total
//      backend memory (scale-ops-fleet.ts).
// Prints a markdown table and writes bench/results/scale-ops-<timestamp>.json. Not a test.
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client } from 'pg'
import { type Migration, TenantPools } from '../lib'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { freshBackendKb } from './backend-memory'
import { bundled } from './bundled-handlers'
import { count } from './env-count'
import { progress } from './progress'
import { type AdminHandlers, askTooMany, provisionAll, walkList } from './scale-ops-admin'
import { catalogMemory } from './scale-ops-catalog'
import { fleetView } from './scale-ops-fleet'
import { fullPass } from './scale-ops-maintenance'

const TENANTS = count('BENCH_SCALE_OPS_TENANTS', 2_000)
// One admin environment's master scope holds maxPerScope (2) connections: more calls in flight
// through it would only queue.
const CONCURRENCY = count('BENCH_SCALE_OPS_CONCURRENCY', 2)
const JOB_TIMEOUT_MS = 900_000 // serverless.yml: functions.maintenance.timeout
const JOB_SAFETY_MARGIN_MS = 60_000 // MAINTENANCE_SAFETY_MARGIN_MS's default
const JOB_WINDOW_MS = count('BENCH_SCALE_OPS_JOB_WINDOW_MS', 10_000)
const ENVIRONMENTS = count('BENCH_SCALE_OPS_ENVIRONMENTS', 10)
const REQUESTS = count('BENCH_SCALE_OPS_REQUESTS', 2_000)
const PREFIX = 'so'
const idOf = (i: number) => `${PREFIX}${i}`

// Two bench-only migrations, one per pass, so that each pass has real work to apply everywhere; each
// fails if run twice in a schema (a column added twice, an index created twice).
const passMigrations = [
  { version: '9001_bench_note', sql: 'ALTER TABLE orders ADD COLUMN bench_note text' },
  { version: '9002_bench_note_index', sql: 'CREATE INDEX orders_bench_note ON orders (bench_note)' },
]

interface Deployed {
  admin: AdminHandlers
  maintenance: Parameters<typeof fullPass>[0]
  tenantMigrations: Migration[]
  resetTenantPools: () => Promise<void>
}

async function main(): Promise<void> {
  progress('starting a fresh embedded PostgreSQL')
  const server = await startEmbeddedPostgres({ database: 'tenant_pools_scale_ops' })
  const url: string = server.url
  const key = randomBytes(16).toString('hex')
  // The functions read their configuration once, at load: set it first.
  Object.assign(process.env, {
    DATABASE_URL: url,
    ADMIN_API_KEY: key,
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  })
  // As deployed: one CommonJS bundle (middy is ESM-only), so that the handlers, the registry they
  // share and the tenant migrations the job reads are one module instance each.
  const deployed = await bundled<Deployed>([
    "export * as admin from './functions/admin/handlers'",
    "export { handler as maintenance } from './functions/jobs/maintenance/index'",
    "export { tenantMigrations } from './migrations'",
    "export { resetTenantPools } from './lib'",
  ])
  const handlers = deployed.admin
  const monitor = new Client({ connectionString: url, application_name: 'so-monitor' })
  await monitor.connect()
  const pools = new TenantPools({ connectionString: url, applicationNamePrefix: 'so-bench' })
  try {
    const ids = Array.from({ length: TENANTS }, (_, i) => idOf(i))
    progress(`a. provisioning ${TENANTS} tenants through POST /admin/tenants, ${CONCURRENCY} in flight`)
    const provisioning = await provisionAll(handlers, key, ids, CONCURRENCY)
    await deployed.resetTenantPools() // the admin environment's connections: not part of what follows

    const schemas = ids.map((id) => pools.schemaOf(id))
    progress(`b. maintenance, invocations of ${JOB_TIMEOUT_MS / 1000} s (the configured timeout)`)
    const configured = await fullPass(
      deployed.maintenance,
      deployed.tenantMigrations,
      passMigrations[0] as (typeof passMigrations)[0],
      JOB_TIMEOUT_MS,
      monitor,
      schemas,
    )
    const windowed = JOB_SAFETY_MARGIN_MS + JOB_WINDOW_MS
    progress(
      `b. maintenance, invocations of ${windowed / 1000} s (${JOB_WINDOW_MS / 1000} s to start tenants)`,
    )
    const resumed = await fullPass(
      deployed.maintenance,
      deployed.tenantMigrations,
      passMigrations[1] as (typeof passMigrations)[0],
      windowed,
      monitor,
      schemas,
    )

    progress('c. the tenant catalog cache, every tenant cached')
    const catalog = await catalogMemory(pools, TENANTS, idOf)

    progress('d. GET /admin/tenants to the end, at the default and the largest page')
    // Once untimed: the admin environment's registry was reset above, and its first call connects.
    await askTooMany(handlers, key, 1)
    const walks = [await walkList(handlers, key, ids), await walkList(handlers, key, ids, 200)]
    const tooMany = [await askTooMany(handlers, key, 201), await askTooMany(handlers, key, 5_000)]
    await deployed.resetTenantPools()

    const freshKb = await freshBackendKb(url)
    const fleet = await fleetView(
      url,
      monitor,
      { environments: ENVIRONMENTS, requests: REQUESTS, tenants: TENANTS, prefix: PREFIX, freshKb },
      (t) => pools.schemaOf(t),
    )

    report({ provisioning, passes: [configured, resumed], catalog, walks, tooMany, fleet })
  } finally {
    await deployed.resetTenantPools().catch(() => {})
    // The maintenance job's registry lives in its module, as in a warm Lambda: its idle connections
    // are ended here, so that the server stops at once.
    await monitor
      .query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      )
      .catch(() => {})
    await pools.end().catch(() => {})
    await monitor.end().catch(() => {})
    await server.stop()
  }
}

type Results = {
  provisioning: Awaited<ReturnType<typeof provisionAll>>
  passes: Array<Awaited<ReturnType<typeof fullPass>>>
  catalog: Awaited<ReturnType<typeof catalogMemory>>
  walks: Array<Awaited<ReturnType<typeof walkList>>>
  tooMany: Array<Awaited<ReturnType<typeof askTooMany>>>
  fleet: Awaited<ReturnType<typeof fleetView>>
}

function report(r: Results): void {
  const p = r.provisioning
  const rows: Array<[string, string]> = [
    [
      `a. provisioning (POST /admin/tenants, ${p.concurrency} in flight)`,
      `${p.tenants} in ${p.seconds} s = **${p.tenantsPerSecond} tenants/s**; a call p50 ${p.p50ms} / p99 ${p.p99ms} ms`,
    ],
    ...r.passes.map((pass): [string, string] => [
      `b. maintenance pass (${pass.migration}), invocations of ${pass.invocationMs / 1000} s`,
      `**${pass.invocations} invocation(s), ${pass.totalSeconds} s** (tenants per invocation ${pass.perInvocation.join(', ')}); ` +
        `failed ${pass.failed}, unrecorded ${pass.unrecorded}, zombies reaped ${pass.zombiesReaped}; ` +
        `progress rows ${pass.progressRows} (done ${pass.doneRows}), schemas with the migration once ${pass.migratedSchemas}`,
    ]),
    [
      `c. tenant catalog cache, ${r.catalog.tenants} tenants cached`,
      `**${r.catalog.totalKB} KB, ${r.catalog.bytesPerTenant} bytes per tenant** (median of ${r.catalog.trials})`,
    ],
    ...r.walks.map((w): [string, string] => [
      `d. GET /admin/tenants, limit ${w.limit}`,
      `${w.pages} pages, largest ${w.largestPage} rows, every tenant once: ${w.eachOnce}; a page p50 ${w.p50ms} / p99 ${w.p99ms} ms, the walk ${w.totalMs} ms`,
    ]),
    ...r.tooMany.map((t): [string, string] => [
      `d. GET /admin/tenants?limit=${t.limit}`,
      `${t.status} ${t.code ?? ''}, ${t.rows} rows`,
    ]),
    ...r.fleet.designs.map((d): [string, string] => [
      `e. fleet view, ${r.fleet.environments} environments: ${d.design}`,
      `server backend memory **${d.endTotalMB} MB** at the end (peak ${d.peakTotalMB} MB) over ${d.backendsAtEnd} backends, ` +
        `largest ${d.largestBackendMB} MB, ${d.newSessions} sessions opened`,
    ]),
  ]
  console.log(
    `scale-ops: ${r.provisioning.tenants} tenants on a fresh embedded PostgreSQL; fleet view: ${r.fleet.requestsPerEnvironment} ` +
      `requests per environment, Zipf(1.0), ${r.fleet.distinctTenantsPerEnvironment} distinct tenants each on average, ` +
      `a fresh backend ${r.fleet.freshBackendMB ?? 'unreadable'} MB\n`,
  )
  console.log('| part | measured |\n| --- | --- |')
  for (const [part, value] of rows) console.log(`| ${part} | ${value} |`)
  const at = new Date().toISOString()
  const dir = join(__dirname, 'results')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `scale-ops-${at.replace(/[:.]/g, '-')}.json`)
  writeFileSync(file, `${JSON.stringify({ at, node: process.version, ...r }, null, 2)}\n`)
  console.log(`\nwrote ${file}`)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
