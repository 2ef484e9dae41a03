// The many-tenants scenario (part of `npm run bench`): one environment serving requests one at a
// time for 200 tenants with Zipf(1.1) traffic, one SELECT on the tenant's schema each, replayed on
// the same sequence by four designs, alternating in blocks so that machine noise hits all alike:
// tenant-pools (defaults); one shared pg.Pool (max 2) with SET search_path per request;
// serverless-postgres as its README shows, plus the SET; a new connection per request. Prints p50,
// p99, new server sessions per 1,000 requests (pg_stat_database.sessions, measured per design on its
// own) and answers from a wrong schema; then where tenant-pools' time goes: how many checkouts
// changed the connection's scope, and what the full reset of a change of scope costs on the server
// beside a bare rebind. Not a test: the machines are noisy.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client, Pool } from 'pg'
import ServerlessClient from 'serverless-postgres'
import { TenantPools } from '../lib'
import { committedFirst } from '../lib/pool/bound-query'
import { bindStatements, resetStatements } from '../lib/pool/session'
// @ts-expect-error: an ESM helper without type declarations, shared with the jest setup
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs'
import { progress } from './progress'
import { silent } from './silent-log'
import { seededRandom, zipfTenants } from './zipf'

const TENANTS = 200
const REQUESTS = 4_000
const WARM_UP = 400
const BLOCK = 100
const SESSIONS_SAMPLE = 1_000

// Every design and every run replays the same tenant sequence.
const zipfSequence = (n: number): string[] =>
  Array.from({ length: n }, zipfTenants(TENANTS, 'mt', seededRandom(42)))

type Request = (tenant: string) => Promise<string | undefined>
interface Design {
  name: string
  request: Request
  end: () => Promise<void>
  /** Checkouts, and those that changed the connection's scope (tenant-pools only). */
  scopeChanges?: () => { checkouts: number; rebound: number }
}

const SELECT = 'SELECT tenant FROM owner'
const setPath = (tenant: string) => `SET search_path TO tenant_${tenant}`

function designs(url: string): Design[] {
  const pools = new TenantPools({ connectionString: url, logger: silent, applicationNamePrefix: 'mt-ours' })
  const shared = new Pool({ connectionString: url, max: 2, application_name: 'mt-pool' })
  const serverless = new ServerlessClient({ connectionString: url, application_name: 'mt-serverless' })
  return [
    {
      name: 'tenant-pools (defaults)',
      request: async (t) => (await pools.query<{ tenant: string }>(t, SELECT)).rows[0]?.tenant,
      end: () => pools.end(),
      scopeChanges: () => {
        const { checkouts, connectionsRebound } = pools.stats().counters
        return { checkouts, rebound: connectionsRebound }
      },
    },
    {
      name: 'shared pg.Pool (max 2) + SET',
      request: async (t) => {
        const c = await shared.connect()
        try {
          await c.query(setPath(t))
          return (await c.query<{ tenant: string }>(SELECT)).rows[0]?.tenant
        } finally {
          c.release()
        }
      },
      end: () => shared.end(),
    },
    {
      name: 'serverless-postgres 2.1.2 + SET',
      request: async (t) => {
        await serverless.connect()
        await serverless.query(setPath(t))
        const { rows } = await serverless.query(SELECT)
        await serverless.clean()
        return (rows[0] as { tenant: string } | undefined)?.tenant
      },
      end: () => serverless.end(),
    },
    {
      name: 'new connection per request',
      request: async (t) => {
        const c = new Client({ connectionString: url, options: `-c search_path=tenant_${t}` })
        await c.connect()
        try {
          return (await c.query<{ tenant: string }>(SELECT)).rows[0]?.tenant
        } finally {
          await c.end()
        }
      },
      end: async () => {},
    },
  ]
}

const percentile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function main(): Promise<void> {
  progress(process.env.DATABASE_URL ? 'using DATABASE_URL' : 'starting an embedded PostgreSQL')
  const server = process.env.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ database: 'tenant_pools_many' })
  const url: string = process.env.DATABASE_URL ?? server.url
  const admin = new Client({ connectionString: url })
  await admin.connect()
  try {
    progress(`making ${TENANTS} tenant schemas`)
    for (let i = 0; i < TENANTS; i++) {
      await admin.query(
        `DROP SCHEMA IF EXISTS tenant_mt${i} CASCADE; CREATE SCHEMA tenant_mt${i};
         CREATE TABLE tenant_mt${i}.owner (tenant text); INSERT INTO tenant_mt${i}.owner VALUES ('mt${i}')`,
      )
    }
    const sequence = zipfSequence(WARM_UP + REQUESTS)
    // Sessions established so far in this database, once every backend has reported (idle
    // backends flush their statistics after about a second).
    const sessions = async () => {
      await sleep(1_500)
      const { rows } = await admin.query<{ n: string }>(
        'SELECT sessions AS n FROM pg_stat_database WHERE datname = current_database()',
      )
      return Number(rows[0]?.n)
    }

    progress('1. latency, designs alternating in blocks')
    // 1. Latency, alternating in blocks of BLOCK requests, the order of designs rotating per block.
    let list = designs(url)
    const latencies = list.map(() => [] as number[])
    const wrong = list.map(() => 0)
    for (const d of list) for (const t of sequence.slice(0, WARM_UP)) await d.request(t)
    const measured = sequence.slice(WARM_UP)
    for (let b = 0; b * BLOCK < measured.length; b++) {
      const block = measured.slice(b * BLOCK, (b + 1) * BLOCK)
      for (let k = 0; k < list.length; k++) {
        const i = (b + k) % list.length
        const d = list[i] as Design
        for (const t of block) {
          const start = process.hrtime.bigint()
          const answer = await d.request(t)
          latencies[i]?.push(Number(process.hrtime.bigint() - start) / 1e6)
          if (answer !== t) wrong[i] = (wrong[i] ?? 0) + 1
        }
      }
    }
    const changes = list[0]?.scopeChanges?.()
    await Promise.all(list.map((d) => d.end()))

    // 2. New sessions per 1,000 requests after warm-up, each design on its own.
    list = designs(url)
    const newSessions: number[] = []
    for (const d of list) {
      for (const t of sequence.slice(0, WARM_UP)) await d.request(t)
      const before = await sessions()
      for (const t of sequence.slice(WARM_UP, WARM_UP + SESSIONS_SAMPLE)) await d.request(t)
      const after = await sessions()
      newSessions.push(((after - before) * 1_000) / SESSIONS_SAMPLE)
      await d.end()
    }

    const rows = list.map((d, i) => ({
      design: d.name,
      p50ms: +percentile(latencies[i] ?? [], 0.5).toFixed(3),
      p99ms: +percentile(latencies[i] ?? [], 0.99).toFixed(3),
      newSessionsPer1000: newSessions[i],
      wrongSchemaAnswers: wrong[i],
    }))
    console.log(
      `many tenants: ${TENANTS} tenants, Zipf(1.1), ${REQUESTS} requests one at a time after ${WARM_UP} of warm-up, blocks of ${BLOCK}`,
    )
    console.table(rows)
    const ours = rows[0]
    const pool = rows[1]
    if (ours && pool) {
      console.log(
        `targets: p50 at or below the shared pg.Pool + SET: ${ours.p50ms} vs ${pool.p50ms} ms (${(ours.p50ms / pool.p50ms).toFixed(2)}x); ` +
          `new sessions per 1,000 <= 5: ${ours.newSessionsPer1000}; wrong-schema answers 0: ${ours.wrongSchemaAnswers}`,
      )
    }
    const cost = await scopeChangeCost(url)
    if (changes) {
      console.log(
        `where the time goes: ${changes.rebound} of tenant-pools' ${changes.checkouts} checkouts changed the connection's scope; ` +
          `on one connection, the statement alone ${cost.statementUs} µs, with a bare rebind (SET search_path, SET application_name) ${cost.rebindUs} µs, ` +
          `with the full reset and rebind a change of scope takes ${cost.resetUs} µs (median of ${cost.n}, alternated): ` +
          `the reset adds ${(cost.resetUs - cost.rebindUs).toFixed(1)} µs of server time per change of scope`,
      )
    }
    const dir = join(__dirname, 'results')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `many-tenants-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
    writeFileSync(
      file,
      `${JSON.stringify({ at: new Date().toISOString(), node: process.version, rows, changes, cost }, null, 2)}\n`,
    )
    console.log(`wrote ${file}`)
  } finally {
    await admin.end()
    await server?.stop()
  }
}

/**
 * What a change of scope costs on the server, on one connection, in one round trip each, alternated:
 * the statement alone, behind a bare rebind (as before the full reset), and behind the full reset
 * and rebind the library sends (session.ts, committed first as bound-query.ts does).
 */
async function scopeChangeCost(
  url: string,
): Promise<{ statementUs: number; rebindUs: number; resetUs: number; n: number }> {
  // Bound at login as a new connection of the library is: the statement alone finds its table.
  const client = new Client({ connectionString: url, options: '-c search_path=tenant_mt0,pg_temp' })
  await client.connect()
  const n = 3_000
  const times = { statement: [] as number[], rebind: [] as number[], reset: [] as number[] }
  try {
    for (let i = 0; i < n; i++) {
      const binding = { schema: `tenant_mt${i % TENANTS}`, applicationName: `mt-cost:mt${i % TENANTS}` }
      const texts = {
        statement: SELECT,
        rebind: [...bindStatements(binding), SELECT].join('; '),
        reset: [...committedFirst(resetStatements(binding, false)), SELECT].join('; '),
      }
      for (const key of (i % 2
        ? ['reset', 'rebind', 'statement']
        : ['statement', 'rebind', 'reset']) as Array<keyof typeof texts>) {
        const start = process.hrtime.bigint()
        await client.query(texts[key])
        times[key].push(Number(process.hrtime.bigint() - start) / 1e3)
      }
    }
  } finally {
    await client.end()
  }
  const median = (xs: number[]) => +percentile(xs, 0.5).toFixed(1)
  return {
    statementUs: median(times.statement),
    rebindUs: median(times.rebind),
    resetUs: median(times.reset),
    n,
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
