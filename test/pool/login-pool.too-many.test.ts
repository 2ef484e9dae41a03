// Chaos: the server runs out of connections (53300). A new connection is retried with jittered
// backoff after this environment gives back its idle connections (of other logins: one of the same
// login would have been rebound instead); a caller sees a 503 only when the connect budget runs out.
import { Client } from 'pg'
import { ConnectError, TenantPools, toHttp } from '../../lib'
import { type ControlledServer, controlledServer } from '../support/controlled-pg'
import { memoryLog } from '../support/memory-log'

describe('Chaos: too many connections', () => {
  let server: ControlledServer
  const outsiders: Client[] = []
  beforeAll(async () => {
    server = await controlledServer([
      'max_connections=6',
      'superuser_reserved_connections=0',
      'reserved_connections=0',
    ])
  }, 60_000)
  afterAll(async () => {
    await Promise.all(outsiders.map((c) => c.end().catch(() => {})))
    await server.quit()
  })

  const occupy = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const c = new Client({ connectionString: server.url, application_name: 'outsider' })
      c.on('error', () => {})
      await c.connect()
      outsiders.push(c)
    }
  }

  it('frees its idle connections of other logins and retries; 503 only when nothing frees up in time', async () => {
    // Prepare: 4 of 6 slots held by another application; tenants a and b (one login) hold the last
    // two, then leave them idle. Tenant c logs in as another role: it cannot borrow theirs.
    const admin = new Client({ connectionString: server.url })
    await admin.connect()
    await admin.query(`CREATE ROLE other LOGIN PASSWORD 'other'`)
    await admin.end()
    await occupy(4)
    const { log, entries } = memoryLog()
    const pools = new TenantPools({
      connectionString: server.url,
      budget: 4,
      maxPerPool: 1,
      connectTimeoutMs: 1_500,
      logger: log,
      credentials: async ({ tenantId }) =>
        tenantId?.startsWith('c')
          ? { user: 'other', password: 'other' }
          : { user: 'postgres', password: 'postgres' },
    })
    await Promise.all(['a', 'b'].map((t) => pools.withClient(t, () => new Promise((r) => setTimeout(r, 50)))))
    expect(pools.stats().totals).toMatchObject({ total: 2, idle: 2 })

    // Act: tenant c needs a connection the server no longer has
    await expect(pools.query<{ ok: number }>('c', 'SELECT 1 AS ok')).resolves.toMatchObject({
      rows: [{ ok: 1 }],
    })

    // Assess: it got one after giving back a and b's idle connections
    const { counters, pools: list, logins } = pools.stats()
    expect(logins).toHaveLength(2)
    expect(counters.serverFullRetries).toBeGreaterThanOrEqual(1)
    expect(list.filter((p) => p.key !== 'c').every((p) => p.idle === 0)).toBe(true)
    expect(entries.some((e) => e.message.includes('server out of connections'))).toBe(true)

    // And when every slot is someone else's, the caller gets a 503 once the budget runs out
    await pools.evict('c')
    await occupy(2)
    const err = await pools.query('c2', 'SELECT 1').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConnectError)
    expect(toHttp(err)).toMatchObject({ status: 503, headers: { 'retry-after': '1' } })
    expect(pools.stats().counters.serverFullRetries).toBeGreaterThan(counters.serverFullRetries + 1)
    await pools.end()
  }, 60_000)
})
