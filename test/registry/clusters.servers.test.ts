// Tenants on two clusters, a reader, and a cap per cluster, against real servers: the main cluster
// (DATABASE_URL), a second one (TEST_CLUSTER_B_URL) and a streaming replica of the main one.
import { TenantPools, UnknownClusterError } from '../../lib'
import { clusterBUrl, databaseUrl, onServer, uniquePrefix, uniqueTenant } from '../support/db'
import { memoryLog } from '../support/memory-log'
import { startReplica } from '../support/replica.mjs'

// The registries' own log lines stay out of the run's output.
const quiet = memoryLog().log

// Creates tenant_<id> with a table `who` holding `label` on the server at `url`.
async function tenantOn(url: string, id: string, label: string): Promise<void> {
  await onServer(url, async (c) => {
    await c.query(`CREATE SCHEMA tenant_${id}`)
    await c.query(`CREATE TABLE tenant_${id}.who (label text NOT NULL)`)
    await c.query(`INSERT INTO tenant_${id}.who VALUES ($1)`, [label])
  })
}

const backendsOf = (url: string, prefix: string) =>
  onServer(url, async (c) => {
    const { rows } = await c.query<{ n: string }>(
      'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1',
      [`${prefix}:%`],
    )
    return Number(rows[0]?.n)
  })

describe('Clusters', () => {
  let pools: TenantPools | undefined
  afterEach(async () => {
    await pools?.end()
    pools = undefined
  })

  it('routes each tenant to its cluster, and opens no connection to a cluster none of its tenants use', async () => {
    const a = uniqueTenant('a')
    const b = uniqueTenant('b')
    await tenantOn(databaseUrl(), a, 'on main')
    await tenantOn(clusterBUrl(), b, 'on b')
    const prefix = uniquePrefix()
    pools = new TenantPools({
      logger: quiet,
      connectionString: databaseUrl(),
      applicationNamePrefix: prefix,
      clusters: { b: { connectionString: clusterBUrl() } },
    })
    await pools.query(a, 'SELECT 1')
    expect(await backendsOf(clusterBUrl(), prefix)).toBe(0)
    const fromA = await pools.query(a, 'SELECT label FROM who')
    const fromB = await pools.query(b, 'SELECT label FROM who', [], { cluster: 'b' })
    expect(fromA.rows).toEqual([{ label: 'on main' }])
    expect(fromB.rows).toEqual([{ label: 'on b' }])
    // Asked on the wrong cluster, the tenant's schema is not there: nothing crosses clusters.
    await expect(pools.query(b, 'SELECT label FROM who')).rejects.toMatchObject({ code: '42P01' })
    expect(await backendsOf(databaseUrl(), prefix)).toBeGreaterThanOrEqual(1)
    expect(await backendsOf(clusterBUrl(), prefix)).toBe(1)
    const clusters = Object.fromEntries(pools.stats().clusters.map((c) => [c.name, c.total]))
    expect(clusters).toEqual({ main: 1, b: 1 })
    // The wrong-cluster call made a scope of its own: keys tell clusters apart.
    expect(
      pools
        .stats()
        .pools.map((p) => p.key)
        .sort(),
    ).toEqual([a, b, `${b}@b`].sort())
  })

  it('refuses a cluster it was not given, before any SQL', async () => {
    pools = new TenantPools({
      logger: quiet,
      connectionString: databaseUrl(),
    })
    await expect(pools.query('acme', 'SELECT 1', [], { cluster: 'nope' })).rejects.toBeInstanceOf(
      UnknownClusterError,
    )
    expect(pools.stats().counters.checkouts).toBe(0)
  })

  it('keeps each cluster within its cap, and every cluster within the budget', async () => {
    const ids = [uniqueTenant('c'), uniqueTenant('c'), uniqueTenant('c')]
    for (const id of ids) await tenantOn(clusterBUrl(), id, id)
    const prefix = uniquePrefix()
    pools = new TenantPools({
      logger: quiet,
      connectionString: databaseUrl(),
      applicationNamePrefix: prefix,
      budget: 4,
      maxPerPool: 2,
      clusters: { b: { connectionString: clusterBUrl(), maxConnections: 2 } },
    })
    const p = pools
    let peakB = 0
    const hold = (id: string) =>
      p.withClient(
        id,
        async (c) => {
          peakB = Math.max(peakB, p.stats().clusters.find((x) => x.name === 'b')?.total ?? 0)
          await c.query('SELECT pg_sleep(0.05)')
        },
        { cluster: 'b' },
      )
    // Six callers over three tenants of b, with room for four in the budget: b holds two at most.
    await Promise.all([...ids, ...ids].map(hold))
    expect(peakB).toBe(2)
    expect(await backendsOf(clusterBUrl(), prefix)).toBeLessThanOrEqual(2)
    // The main cluster still gets its share meanwhile: the cap is b's, not the environment's.
    const main = uniqueTenant('m')
    await tenantOn(databaseUrl(), main, 'main')
    const [, , mainRows] = await Promise.all([
      hold(ids[0] as string),
      hold(ids[1] as string),
      p.query(main, 'SELECT label FROM who'),
    ])
    expect(mainRows.rows).toEqual([{ label: 'main' }])
  })

  it('rejects a cap above the budget, and a cluster without an endpoint', () => {
    expect(
      () =>
        new TenantPools({
          logger: quiet,
          connectionString: databaseUrl(),
          budget: 4,
          clusters: { b: { connectionString: clusterBUrl(), maxConnections: 5 } },
        }),
    ).toThrow(/maxConnections.*exceeds the budget/)
    expect(
      () =>
        new TenantPools({
          logger: quiet,
          connectionString: databaseUrl(),
          clusters: { b: { maxConnections: 1 } },
        }),
    ).toThrow(/clusters\.b.*connectionString or host/)
  })
})

describe('Readers', () => {
  let pools: TenantPools | undefined
  // Removed here rather than in the test: a test cut short (a timeout) skips its own cleanup, and a
  // replica left running keeps a server and up to 900 MB of files.
  let replica: { remove(): Promise<void> } | undefined
  // The replica first: a pools.end() that hangs (a broken build) would otherwise keep it running.
  afterEach(async () => {
    const started = replica
    replica = undefined
    await started?.remove()
    await pools?.end()
    pools = undefined
  })

  it('reads committed rows on the replica once it has caught up, and refuses writes there', async () => {
    const id = uniqueTenant('r')
    await tenantOn(databaseUrl(), id, 'first')
    const replica = process.env.TEST_REPLICA_URL as string
    pools = new TenantPools({
      logger: quiet,
      connectionString: databaseUrl(),
      clusters: { main: { reader: { connectionString: replica } } },
    })
    await pools.query(id, `INSERT INTO who VALUES ('second')`)
    const read = async () =>
      (await pools?.query(id, 'SELECT count(*)::int AS n FROM who', [], { readOnly: true }))?.rows[0]?.n
    // Replication is asynchronous: wait for the row, up to a generous bound.
    let n = await read().catch(() => 0)
    for (let i = 0; i < 200 && n !== 2; i++) {
      await new Promise((r) => setTimeout(r, 25))
      n = await read().catch(() => 0)
    }
    expect(n).toBe(2)
    expect(pools.stats().logins.filter((l) => l.reader)).toHaveLength(1)
    await expect(
      pools.query(id, `INSERT INTO who VALUES ('x')`, [], { readOnly: true }),
    ).rejects.toMatchObject({
      code: '25006',
    })
    expect(pools.stats().counters.readerFallbacks).toBe(0)
  })

  it('falls back to the writer, in read-only sessions, when the replica stops, with no failed call', async () => {
    const primary = {
      url: databaseUrl(),
      port: Number(new URL(databaseUrl()).port),
      dataDir: process.env.TEST_PG_DATA_DIR as string,
    }
    const started = await startReplica(primary)
    replica = started
    const id = uniqueTenant('f')
    await tenantOn(databaseUrl(), id, 'row')
    pools = new TenantPools({
      logger: quiet,
      connectionString: databaseUrl(),
      clusters: { main: { reader: { connectionString: started.url } } },
      readerRetryAfterMs: 60_000,
    })
    const p = pools
    const read = () => p.query(id, 'SELECT label FROM who', [], { readOnly: true })
    let seen = await read()
      .then((r) => r.rowCount)
      .catch(() => 0)
    for (let i = 0; i < 200 && seen !== 1; i++) {
      await new Promise((r) => setTimeout(r, 25))
      seen = await read()
        .then((r) => r.rowCount)
        .catch(() => 0)
    }
    expect(seen).toBe(1)
    // Ten callers reading while the replica stops under them: every call answers.
    let stopping = true
    const outcomes: string[] = []
    const caller = async () => {
      while (stopping) {
        const r = await read().then(
          (res) => (res.rows[0]?.label === 'row' ? 'ok' : 'wrong'),
          (err: { code?: string }) => `failed ${err.code}`,
        )
        outcomes.push(r)
      }
    }
    const callers = Array.from({ length: 10 }, caller)
    await new Promise((r) => setTimeout(r, 100))
    await started.stop()
    await new Promise((r) => setTimeout(r, 300))
    stopping = false
    await Promise.all(callers)
    expect(outcomes.filter((o) => o !== 'ok')).toEqual([])
    expect(outcomes.length).toBeGreaterThan(10)
    const stats = p.stats()
    expect(stats.counters.readerFallbacks).toBeGreaterThan(0)
    expect(stats.clusters[0]?.readerSkipped).toBe(true)
    // On the writer the session is read-only: a write through the read-only scope is refused.
    await expect(p.query(id, `INSERT INTO who VALUES ('x')`, [], { readOnly: true })).rejects.toMatchObject({
      code: '25006',
    })
    // …and a connection the read-only scope used is writable again for a writing scope.
    await p.query(id, `INSERT INTO who VALUES ('written')`)
    expect((await p.query(id, 'SELECT count(*)::int AS n FROM who')).rows[0]?.n).toBe(2)
  })
})
