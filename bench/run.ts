// npm run bench: the warm path against baselines measured in the same run, on the same server.
// Prints a table and writes bench/results/<timestamp>.json. Not a test: the machines are noisy.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client, Pool } from 'pg'
import { TenantPools } from '../lib'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { progress } from './progress'
import { silent } from './silent-log'
import { summarize, time } from './timing'

const WARM_CALLS = 10_000
const COLD_CLIENTS = 200
const THAWS = 50
const MEMORY_TENANTS = 1_000

async function sample(n: number, fn: () => Promise<unknown>, into: number[]): Promise<void> {
  for (let i = 0; i < n; i++) into.push(await time(fn))
}

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (!collect) throw new Error('run with node --expose-gc (npm run bench does)')
  collect()
  collect()
}

async function main(): Promise<void> {
  progress(process.env.DATABASE_URL ? 'using DATABASE_URL' : 'starting an embedded PostgreSQL')
  const server = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ database: 'tenant_pools_bench' })
  const url: string = process.env.DATABASE_URL ?? server.url
  try {
    const admin = new Client({ connectionString: url })
    await admin.connect()
    const auth = await admin.query<{ method: string }>(
      `SELECT auth_method AS method FROM pg_hba_file_rules WHERE 'host' = type LIMIT 1`,
    )
    await admin.end()

    progress('1/4 warm path: tenant pools against a raw pg.Pool')
    // 1. Warm path: pools.query against a raw pg.Pool, alternating call by call (and which goes
    // first) so that machine noise hits both alike, p99 included.
    const pools = new TenantPools({ connectionString: url, logger: silent, budget: 4, maxPerScope: 2 })
    const raw = new Pool({ connectionString: url, max: 2 })
    await pools.query('bench', 'SELECT 1')
    await raw.query('SELECT 1')
    const ours: number[] = []
    const base: number[] = []
    for (let i = 0; i < WARM_CALLS; i++) {
      if (i % 2 === 0) {
        base.push(await time(() => raw.query('SELECT 1')))
        ours.push(await time(() => pools.query('bench', 'SELECT 1')))
      } else {
        ours.push(await time(() => pools.query('bench', 'SELECT 1')))
        base.push(await time(() => raw.query('SELECT 1')))
      }
    }
    await raw.end()

    progress('2/4 a new client per request')
    // 2. A new client per request (connect, password auth, query, end).
    const perRequest: number[] = []
    await sample(
      COLD_CLIENTS,
      async () => {
        const c = new Client({ connectionString: url })
        await c.connect()
        await c.query('SELECT 1')
        await c.end()
      },
      perRequest,
    )

    progress('3/4 first query after a simulated thaw')
    // 3. First query after a simulated thaw. The "freeze" is a synchronous child process that kills
    // the pool's backends while this event loop is blocked, exactly as in a frozen environment: the
    // server's FATAL waits unread in the socket, and the clock has moved past the validation window.
    let offset = 0
    const thawPools = new TenantPools({
      connectionString: url,
      logger: silent,
      applicationNamePrefix: 'bench-thaw',
      clock: { now: () => Date.now() + offset },
    })
    const killScript = `
      const { Client } = require('pg')
      const c = new Client({ connectionString: process.argv[1] })
      c.connect()
        .then(() => c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'bench-thaw:%'"))
        .then(() => new Promise((r) => setTimeout(r, 20)))
        .then(() => c.end())`
    const thawed: number[] = []
    const thawedAlive: number[] = []
    for (let i = 0; i < THAWS; i++) {
      await thawPools.query('thaw', 'SELECT 1')
      spawnSync(process.execPath, ['-e', killScript, url], { cwd: process.cwd(), stdio: 'ignore' })
      offset += 2_000
      thawed.push(await time(() => thawPools.query('thaw', 'SELECT 1')))
      // The same thaw with the connection still alive: the price of the liveness check alone.
      offset += 2_000
      thawedAlive.push(await time(() => thawPools.query('thaw', 'SELECT 1')))
    }
    const replaced = thawPools.stats().counters.connectionsReplaced
    await thawPools.end()

    progress('4/4 memory of 1,000 tenant pools')
    // 4. Memory: 1,000 tenant pools created (each with a connection), then evicted. A first cycle
    // warms up what is allocated once (compiled code, pg's caches); the second is the one measured.
    const many = new TenantPools({
      connectionString: url,
      logger: silent,
      maxScopes: MEMORY_TENANTS,
      budget: 4,
    })
    const cycle = async () => {
      for (let i = 0; i < MEMORY_TENANTS; i++) await many.query(`m${i}`, 'SELECT 1')
      gc()
      const withPools = process.memoryUsage().heapUsed
      for (let i = 0; i < MEMORY_TENANTS; i++) await many.evict(`m${i}`)
      await new Promise((r) => setTimeout(r, 100))
      gc()
      return withPools
    }
    await cycle()
    const heapBefore = process.memoryUsage().heapUsed
    const heapWithPools = await cycle()
    const heapAfter = process.memoryUsage().heapUsed
    await many.end()
    await pools.end()

    const warm = summarize(ours)
    const rawPool = summarize(base)
    const cold = summarize(perRequest)
    const thaw = summarize(thawed)
    const thawAlive = summarize(thawedAlive)
    const results = {
      at: new Date().toISOString(),
      node: process.version,
      authMethod: auth.rows[0]?.method,
      warm: {
        tenantPools: warm,
        rawPgPool: rawPool,
        medianRatio: warm.median / rawPool.median,
        p99Ratio: warm.p99 / rawPool.p99,
      },
      newClientPerRequest: { ...cold, slowerThanWarmBy: cold.median / warm.median },
      thaw: {
        deadConnection: thaw,
        liveConnection: thawAlive,
        replaced,
        deadVsWarm: thaw.median / warm.median,
        deadVsNewClient: thaw.median / cold.median,
      },
      memory: {
        pools: MEMORY_TENANTS,
        heapBeforeMB: heapBefore / 2 ** 20,
        heapWithPoolsMB: heapWithPools / 2 ** 20,
        heapAfterEvictMB: heapAfter / 2 ** 20,
        retainedRatio: heapAfter / heapBefore,
      },
    }

    const f = (n: number) => n.toFixed(3)
    console.table({
      'pools.query warm (ms)': { median: f(warm.median), p99: f(warm.p99), ratio: '' },
      'pg.Pool.query warm (ms)': { median: f(rawPool.median), p99: f(rawPool.p99), ratio: '' },
      'warm ratio (target <= 1.05)': {
        median: f(results.warm.medianRatio),
        p99: f(results.warm.p99Ratio),
        ratio: '',
      },
      [`new Client per request, ${results.authMethod} (ms)`]: {
        median: f(cold.median),
        p99: f(cold.p99),
        ratio: `${results.newClientPerRequest.slowerThanWarmBy.toFixed(1)}x warm`,
      },
      'first query after thaw, dead conn (ms)': {
        median: f(thaw.median),
        p99: f(thaw.p99),
        ratio: `${results.thaw.deadVsWarm.toFixed(1)}x warm, ${results.thaw.deadVsNewClient.toFixed(2)}x new client, ${replaced}/${THAWS} replaced`,
      },
      'first query after thaw, live conn (ms)': {
        median: f(thawAlive.median),
        p99: f(thawAlive.p99),
        ratio: `${(thawAlive.median / warm.median).toFixed(1)}x warm`,
      },
      [`heap MB: before / ${MEMORY_TENANTS} pools / evicted`]: {
        median: `${f(results.memory.heapBeforeMB)} / ${f(results.memory.heapWithPoolsMB)} / ${f(results.memory.heapAfterEvictMB)}`,
        p99: '',
        ratio: `retained ${f(results.memory.retainedRatio)}x`,
      },
    })
    mkdirSync(join(__dirname, 'results'), { recursive: true })
    const file = join(__dirname, 'results', `${results.at.replace(/[:.]/g, '-')}.json`)
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`)
    console.log(`wrote ${file}`)
  } finally {
    await server?.stop()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
