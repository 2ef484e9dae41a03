// One simulated Lambda execution environment for `npm run bench:fleet`. It serves bursts of
// requests read from stdin (one JSON line: tenant ids), one request at a time as classic Lambda
// does, with one of four connection designs, and answers with latencies and error codes.
import { createInterface } from 'node:readline'
import { Client, escapeIdentifier, Pool } from 'pg'
import { TenantPools } from '../lib'
import { silent } from './silent-log'

const [design, url, prefix, urlB] = process.argv.slice(2) as [string, string, string, string | undefined]
// Two clusters: tenants with an odd number live on b, capped at CLUSTER_B_CAP connections per environment.
const CLUSTER_B_CAP = 2
const onB = (tenant: string) => Number(tenant.replace(/\D/g, '')) % 2 === 1

type Run = (tenant: string) => Promise<unknown>

function designFor(name: string): Run {
  if (name === 'ours') {
    const pools = new TenantPools({ connectionString: url, applicationNamePrefix: prefix, logger: silent })
    return (t) => pools.query(t, 'SELECT 1')
  }
  if (name === 'ours-two-clusters') {
    const pools = new TenantPools({
      connectionString: url,
      applicationNamePrefix: prefix,
      logger: silent,
      clusters: { b: { connectionString: urlB, maxConnections: CLUSTER_B_CAP } },
    })
    return (t) => pools.query(t, 'SELECT 1', [], onB(t) ? { cluster: 'b' } : {})
  }
  if (name === 'tutorial') {
    // The common tutorial: a pool per tenant, max 20, min 5, no budget, search_path at startup.
    const pools = new Map<string, Pool>()
    return (t) => {
      let pool = pools.get(t)
      if (!pool) {
        pool = new Pool({
          connectionString: url,
          max: 20,
          min: 5,
          application_name: `${prefix}:${t}`,
          options: `-c search_path=${escapeIdentifier(`tenant_${t}`)}`,
        })
        pool.on('error', () => {})
        pools.set(t, pool)
      }
      return pool.query('SELECT 1')
    }
  }
  if (name === 'single-pool') {
    // One pool per environment, SET search_path on every request.
    const pool = new Pool({ connectionString: url, max: 10, application_name: `${prefix}:shared` })
    pool.on('error', () => {})
    return async (t) => {
      const client = await pool.connect()
      try {
        await client.query(`SET search_path = ${escapeIdentifier(`tenant_${t}`)}`)
        return await client.query('SELECT 1')
      } finally {
        client.release()
      }
    }
  }
  // A new connection per request.
  return async () => {
    const client = new Client({ connectionString: url, application_name: `${prefix}:once` })
    client.on('error', () => {})
    await client.connect()
    try {
      return await client.query('SELECT 1')
    } finally {
      await client.end()
    }
  }
}

const run = designFor(design)

createInterface({ input: process.stdin }).on('line', async (line) => {
  const tenants = JSON.parse(line) as string[]
  const latencies: number[] = []
  const errors: Record<string, number> = {}
  for (const t of tenants) {
    const started = process.hrtime.bigint()
    try {
      await run(t)
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6)
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name ?? 'ERROR'
      errors[code] = (errors[code] ?? 0) + 1
    }
  }
  process.stdout.write(`${JSON.stringify({ latencies, errors })}\n`)
})
