// maxSchemasPerConnection: a connection that has served that many distinct schemas takes no new one
// and is closed when it comes back, never while a call holds it (a backend's catalog cache grows
// with every schema it touches and is freed only when it exits). With keepFullConnection, the first
// to reach the bound is kept for the schemas it served (under a skewed load, the busiest tenants),
// and any other is closed. Driven through the registry against the real server; stats() shows each
// connection's count, and how many were retired so.
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

// One call at a time, `budget` connections at most, the first at the bound kept.
const kept = (maxSchemasPerConnection: number, budget = 1) =>
  testPools({ budget, maxPerScope: 1, maxSchemasPerConnection, keepFullConnection: true }).pools

describe('LoginPool: maxSchemasPerConnection', () => {
  const tenants = Array.from({ length: 6 }, () => uniqueTenant('bound'))
  const [t1, t2, t3, t4, t5, t6] = tenants as [string, string, string, string, string, string]
  beforeAll(() => createTenants(tenants))
  afterEach(endTestPools)

  // t1, then a transaction on t2 that reaches a bound of 2 and keeps working on the same backend:
  // the backend before, the ones its statements saw, the connections and retirements right after
  // it, and whether its row was committed.
  async function transactionAtTheBound(pools: TenantPools) {
    const before = await pidOf(pools, t1)
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
    const after = {
      connections: connections(pools),
      retired: pools.stats().counters.connectionsRetiredBySchemas,
    }
    const { rows } = await pools.query<{ n: string }>(
      t2,
      `SELECT count(*) AS n FROM whoami WHERE tenant = 'in the transaction'`,
    )
    await pools.query(t2, `DELETE FROM whoami WHERE tenant = 'in the transaction'`)
    return { before, inside, after, committed: rows[0]?.n }
  }

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
    const { before, inside, after, committed } = await transactionAtTheBound(onOneConnection(2))
    expect(inside).toEqual([before, before, before])
    expect(after).toEqual({ connections: [], retired: 1 })
    expect(committed).toBe('1')
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
    expect(connections(pools)).toEqual([[t6, 6, true]])
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

  describe('with keepFullConnection', () => {
    it('keeps the first connection at the bound for the schemas it served, and opens another for a new one', async () => {
      // Prepare
      const pools = kept(3, 2)
      const first = await pidOf(pools, t1)
      expect(await pidOf(pools, t2)).toBe(first)
      // A schema it served already does not count again.
      expect(await pidOf(pools, t1)).toBe(first)
      expect(connections(pools)).toEqual([[t1, 2, true]])

      // Act: the third schema reaches the bound.
      expect(await pidOf(pools, t3)).toBe(first)

      // Assess: kept, and still serving its schemas; a new schema gets a connection of its own.
      expect(connections(pools)).toEqual([[t3, 3, true]])
      expect(await pidOf(pools, t1)).toBe(first)
      expect(await pidOf(pools, t2)).toBe(first)
      const second = await pidOf(pools, t4)
      expect(second).not.toBe(first)
      expect(connections(pools)).toEqual([
        [t2, 3, true],
        [t4, 1, true],
      ])
      // Each schema goes back to the backend that holds it.
      expect(await pidOf(pools, t3)).toBe(first)
      expect(await pidOf(pools, t4)).toBe(second)
      expect(pools.stats().counters).toMatchObject({ connectionsRetiredBySchemas: 0, connectionsOpened: 2 })
    })

    it('closes a second connection at the bound at its release, and keeps the first', async () => {
      // Prepare: the first connection kept at the bound with t1 to t3, the second serving t4.
      const pools = kept(3, 2)
      for (const t of [t1, t2, t3]) await pidOf(pools, t)
      const first = await pidOf(pools, t1)
      const second = await pidOf(pools, t4)

      // Act: the second reaches the bound too.
      expect(await pidOf(pools, t5)).toBe(second)
      expect(await pidOf(pools, t6)).toBe(second)

      // Assess
      expect(connections(pools)).toEqual([[t1, 3, true]])
      expect(pools.stats().counters.connectionsRetiredBySchemas).toBe(1)
      expect(await pidOf(pools, t2)).toBe(first)
      const third = await pidOf(pools, t5)
      expect([first, second]).not.toContain(third)
      expect(pools.stats().counters).toMatchObject({ connectionsRetiredBySchemas: 1, connectionsOpened: 3 })
    })

    it('with a budget of one, closes the kept connection to open one for a new schema', async () => {
      // Prepare
      const pools = kept(2)
      const first = await pidOf(pools, t1)
      expect(await pidOf(pools, t2)).toBe(first)
      expect(await pidOf(pools, t1)).toBe(first)

      // Act
      const next = await pidOf(pools, t3)

      // Assess: the new schema never reached the full backend.
      expect(next).not.toBe(first)
      expect(connections(pools)).toEqual([[t3, 1, true]])
      expect(pools.stats().counters).toMatchObject({ connectionsOpened: 2, connectionsClosed: 1 })
      // The kept one gone, the next to reach the bound is kept in its place.
      expect(await pidOf(pools, t4)).toBe(next)
      expect(connections(pools)).toEqual([[t4, 2, true]])
      expect(await pidOf(pools, t3)).toBe(next)
      expect(pools.stats().counters.connectionsRetiredBySchemas).toBe(0)
    })

    it('gives a caller of a new schema the slot of a connection that reaches the bound while it waits', async () => {
      // Prepare: the one connection held by a callback when it reaches the bound; a call for another
      // schema waits for the budget's one slot meanwhile.
      const pools = kept(1)
      let waiting: Promise<number> | undefined
      const held = await pools.withClient(t1, async (client) => {
        waiting = pidOf(pools, t2)
        await new Promise((resolve) => setTimeout(resolve, 50))
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
        return rows[0]?.pid as number
      })

      // Act: released at the bound, it cannot serve the waiting call's schema.
      const other = await waiting

      // Assess: closed for the waiting call, which got a new connection (not a wait to its timeout).
      expect(other).not.toBe(held)
      expect(pools.stats().counters).toMatchObject({ connectionsRetiredBySchemas: 1, connectionsOpened: 2 })
      expect(connections(pools)).toEqual([[t2, 1, true]])
    })

    it('lets a transaction on a connection that reaches the bound finish, and keeps it after', async () => {
      const pools = kept(2)
      const { before, inside, after, committed } = await transactionAtTheBound(pools)
      expect(inside).toEqual([before, before, before])
      expect(after).toEqual({ connections: [[t2, 2, true]], retired: 0 })
      expect(committed).toBe('1')
      expect(await pidOf(pools, t1)).toBe(before)
      expect(pools.stats().counters.connectionsRetiredBySchemas).toBe(0)
    })

    it('with a bound of 1, gives withClient the whole callback, and each new schema a fresh connection', async () => {
      const pools = kept(1)
      const pids = await pools.withClient(t1, async (client) => {
        const a = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
        const b = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
        return [a.rows[0]?.pid, b.rows[0]?.pid]
      })
      expect(pids[0]).toBe(pids[1])
      expect(await pidOf(pools, t1)).toBe(pids[0])
      expect(await pidOf(pools, t2)).not.toBe(pids[0])
      expect(pools.stats().counters).toMatchObject({ connectionsOpened: 2 })
      expect(connections(pools)).toEqual([[t2, 1, true]])
    })
  })
})
