// Helpers for integration tests against the real PostgreSQL named by DATABASE_URL.
import { randomBytes } from 'node:crypto'
import { Client, type ClientBase } from 'pg'
import { TenantPools, type TenantPoolsOptions } from '../../lib'
import { type LogEntry, memoryLog } from './memory-log'

export const databaseUrl = (): string => {
  const url = process.env.DATABASE_URL
  if (!url) throw new Error('DATABASE_URL is not set: the jest global setup should have started PostgreSQL')
  return url
}

/** The second cluster's server (TEST_CLUSTER_B_URL, started by the jest global setup). */
export const clusterBUrl = (): string => {
  const url = process.env.TEST_CLUSTER_B_URL
  if (!url)
    throw new Error('TEST_CLUSTER_B_URL is not set: the jest global setup should have started cluster b')
  return url
}

/** Runs `fn` on a connection of its own to the server at `url` (another cluster, a replica …). */
export async function onServer<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, application_name: 'tenant-pools-test-admin' })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

/** Runs `fn` on a connection of its own to the main test server (DATABASE_URL). */
export const withAdmin = <T>(fn: (client: Client) => Promise<T>): Promise<T> => onServer(databaseUrl(), fn)

/** The last statement of each backend whose application_name starts with `prefix:`, as the server saw it. */
export const lastStatements = (prefix: string): Promise<string[]> =>
  withAdmin(async (admin) => {
    const { rows } = await admin.query<{ query: string }>(
      'SELECT query FROM pg_stat_activity WHERE application_name LIKE $1',
      [`${prefix}:%`],
    )
    return rows.map((r) => r.query)
  })

/** A prefix unique to one test, so its backends can be counted in pg_stat_activity. */
export const uniquePrefix = (): string => `t${randomBytes(5).toString('hex')}`

/** A tenant id unique to one test. */
export const uniqueTenant = (label = 't'): string => `${label}_${randomBytes(4).toString('hex')}`

/** Creates `tenant_<id>` with a `whoami` table holding the tenant's id. */
export async function createTenants(ids: string[]): Promise<void> {
  await withAdmin(async (admin) => {
    for (const id of ids) {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS tenant_${id}`)
      await admin.query(`CREATE TABLE IF NOT EXISTS tenant_${id}.whoami (tenant text NOT NULL)`)
      await admin.query(`TRUNCATE tenant_${id}.whoami`)
      await admin.query(`INSERT INTO tenant_${id}.whoami VALUES ($1)`, [id])
    }
  })
}

/** Open backends whose application_name starts with `${prefix}:`. */
export async function countBackends(prefix: string): Promise<number> {
  return withAdmin(async (admin) => {
    const { rows } = await admin.query<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1',
      [`${prefix}:%`],
    )
    return Number(rows[0]?.n)
  })
}

/**
 * Counts backends whose application_name starts with `${prefix}:` in pg_stat_activity, over and over
 * until `stop()`, which resolves with the highest count seen.
 */
export function sampleBackends(prefix: string): { stop: () => Promise<number> } {
  let peak = 0
  let sampling = true
  const sampler = withAdmin(async (admin) => {
    while (sampling) {
      const { rows } = await admin.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1',
        [`${prefix}:%`],
      )
      peak = Math.max(peak, Number(rows[0]?.n))
    }
  })
  return {
    stop: async () => {
      sampling = false
      await sampler
      return peak
    },
  }
}

/** Terminates every backend of this prefix (only those running a statement, if `activeOnly`). */
export async function terminateBackends(prefix: string, { activeOnly = false } = {}): Promise<number> {
  return withAdmin(async (admin) => {
    const { rows } = await admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE application_name LIKE $1 AND (NOT $2 OR state = 'active')`,
      [`${prefix}:%`, activeOnly],
    )
    return rows.length
  })
}

export interface TestPools {
  pools: TenantPools
  prefix: string
  logs: LogEntry[]
}

const open: TenantPools[] = []

/** A registry on the test database with its own application_name prefix and a captured log. */
export function testPools(options: TenantPoolsOptions = {}): TestPools {
  const prefix = uniquePrefix()
  const { log, entries } = memoryLog()
  const pools = new TenantPools({
    connectionString: databaseUrl(),
    applicationNamePrefix: prefix,
    logger: log,
    ...options,
  })
  open.push(pools)
  return { pools, prefix, logs: entries }
}

// Backends a test stopped (SIGSTOP): resumed by endTestPools even when the test never got to it (a
// timeout, a broken build in a mutation run), or the server could never shut down.
const stopped = new Set<number>()

/** Stops a backend, as a server that no longer answers; resumeBackend or endTestPools resumes it. */
export function stopBackend(pid: number): void {
  process.kill(pid, 'SIGSTOP')
  stopped.add(pid)
}

export function resumeBackend(pid: number): void {
  if (!stopped.delete(pid)) return
  try {
    process.kill(pid, 'SIGCONT')
  } catch {
    // gone already
  }
}

/** Ends every registry a test built, after resuming any backend it stopped; call in afterEach. */
export async function endTestPools(): Promise<void> {
  for (const pid of [...stopped]) resumeBackend(pid)
  await Promise.all(open.splice(0).map((p) => p.end()))
}

/** A promise and the function that resolves it: a gate a test opens when it chooses. */
export function signal(): { done: Promise<void>; fire: () => void } {
  let fire = () => {}
  const done = new Promise<void>((resolve) => {
    fire = resolve
  })
  return { done, fire }
}

/**
 * Takes a connection of `tenant` and holds it until `release()`; then runs `after` on it (if given)
 * and gives it back. Resolves once the connection is held; `done` settles with `after`'s result.
 */
export async function holdConnection<T = undefined>(
  pools: TenantPools,
  tenant: string,
  after?: (client: ClientBase) => Promise<T>,
): Promise<{ release: () => void; done: Promise<T | undefined> }> {
  const released = signal()
  const acquired = signal()
  const done = pools.withClient(tenant, async (client) => {
    acquired.fire()
    await released.done
    return after?.(client)
  })
  await acquired.done
  return { release: released.fire, done }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** What a call came to: 'done', or the code (SQLSTATE or ours) it failed with. */
export const codeOf = (p: Promise<unknown>): Promise<string | undefined> =>
  p.then(
    () => 'done',
    (e: { code?: string }) => e.code,
  )

/** Polls until `check` returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(
  check: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() > deadline) return false
    await sleep(25)
  }
}
