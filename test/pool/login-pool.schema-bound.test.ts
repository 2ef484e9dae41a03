// maxSchemasPerConnection: a connection that has served that many distinct schemas is closed when it
// comes back, never while a call holds it (a backend's catalog cache grows with every schema it
// touches and is freed only when it exits). Driven through the registry against the real server;
// stats() shows each connection's count, and how many were retired so.
import type { TenantPools } from '../../lib'
import { createTenants, endTestPools, testPools, uniqueTenant } from '../support/db'

const pidOf = async (pools: TenantPools, tenant: string): Promise<number> => {
  const { rows } = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')
  return rows[0]?.pid as number
}

// Each connection of the one login: the scope it is bound to and the schemas it served.
const connections = (pools: TenantPools) =>
  pools.stats().logins.flatMap((l) => l.connections.map((c) => [c.scope, c.schemasServed, c.idle]))

// One connection at a time, so every call of the test lands on the same one while it lives.
const onOneConnection = (maxSchemasPerConnection: number) =>
  testPools({ budget: 1, maxPerScope: 1, maxSchemasPerConnection }).pools

describe('LoginPool: maxSchemasPerConnection', () => {
  const tenants = Array.from({ length: 4 }, () => uniqueTenant('bound'))
  const [t1, t2, t3, t4] = tenants as [string, string, string, string]
  beforeAll(() => createTenants(tenants))
  afterEach(endTestPools)

  it('closes a connection at the release after its Nth distinct schema, and counts it', async () => {
    // Prepare
    const pools = onOneConnection(3)
    const first = await pidOf(pools, t1)
    expect(await pidOf(pools, t2)).toBe(first)
    // A schema it served already does not count again.
    expect(await pidOf(pools, t1)).toBe(first)
    expect(connections(pools)).toEqual([[t1, 2, true]])

    // Act: the third schema is served, on the same backend, then the connection is closed.
    const third = await pidOf(pools, t3)

    // Assess
    expect(third).toBe(first)
    expect(connections(pools)).toEqual([])
    expect(pools.stats().counters).toMatchObject({ connectionsRetiredBySchemas: 1, connectionsOpened: 1 })
    const next = await pidOf(pools, t1)
    expect(next).not.toBe(first)
    expect(connections(pools)).toEqual([[t1, 1, true]])
    expect(pools.stats().counters).toMatchObject({ connectionsRetiredBySchemas: 1, connectionsOpened: 2 })
  })

  it('lets a transaction on a connection that reaches the bound finish, and closes it only after', async () => {
    // Prepare
    const pools = onOneConnection(2)
    const before = await pidOf(pools, t1)

    // Act: the second schema is a transaction's, which keeps working after it reached the bound.
    const inside = await pools.transaction(t2, async (client) => {
      const pids: number[] = []
      for (let i = 0; i < 3; i++) {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
        pids.push(rows[0]?.pid as number)
      }
      await client.query('INSERT INTO whoami VALUES ($1)', ['in the transaction'])
      // Still held and counted while the callback runs.
      expect(connections(pools)).toEqual([[t2, 2, false]])
      return pids
    })

    // Assess
    expect(inside).toEqual([before, before, before])
    expect(connections(pools)).toEqual([])
    expect(pools.stats().counters.connectionsRetiredBySchemas).toBe(1)
    const { rows } = await pools.query<{ n: string }>(
      t2,
      `SELECT count(*) AS n FROM whoami WHERE tenant = 'in the transaction'`,
    )
    expect(rows[0]?.n).toBe('1')
    await pools.query(t2, `DELETE FROM whoami WHERE tenant = 'in the transaction'`)
  })

  it('with a bound of 1, gives withClient the whole callback, and each call a fresh connection', async () => {
    const pools = onOneConnection(1)
    const pids = await pools.withClient(t1, async (client) => {
      const a = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      const b = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      return [a.rows[0]?.pid, b.rows[0]?.pid]
    })
    expect(pids[0]).toBe(pids[1])
    expect(await pidOf(pools, t1)).not.toBe(pids[0])
    expect(pools.stats().counters).toMatchObject({ connectionsRetiredBySchemas: 2, connectionsOpened: 2 })
  })

  it('sets no bound at 0: one connection serves every schema', async () => {
    const pools = onOneConnection(0)
    const pids = new Set<number>()
    for (const t of [...tenants, ...tenants]) pids.add(await pidOf(pools, t))
    expect(pids.size).toBe(1)
    expect(connections(pools)).toEqual([[t4, 4, true]])
    expect(pools.stats().counters.connectionsRetiredBySchemas).toBe(0)
  })

  it('counts schemas, not scopes: the apps of one tenant share its schema and its count', async () => {
    const pools = onOneConnection(2)
    const first = await pidOf(pools, t1)
    await pools.query(t1, 'SELECT 1', [], { app: 'web' })
    await pools.query(t1, 'SELECT 1', [], { app: 'mobile' })
    expect(connections(pools)).toEqual([[`${t1}:mobile`, 1, true]])
    expect(await pidOf(pools, t1)).toBe(first)
  })
})
