// Spreading: served one at a time, many tenants would all go through one connection, whose backend
// reaches maxSchemasPerConnection and is replaced by a cold one again and again. Once the connection
// a new schema would go to has served half the bound, and a budget slot is free now, a spare
// connection is opened for no call, and the schemas to come go to it. Driven through the registry
// against the real server.
import type { TenantPools } from '../../lib'
import { createTenants, databaseUrl, endTestPools, testPools, uniqueTenant } from '../support/db'

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = async (condition: () => boolean) => {
  for (let i = 0; i < 300 && !condition(); i++) await delay(10)
  expect(condition()).toBe(true)
}

const pidOf = async (pools: TenantPools, tenant: string): Promise<number> => {
  const { rows } = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')
  return rows[0]?.pid as number
}

// The schemas each connection served, most first.
const served = (pools: TenantPools) =>
  pools
    .stats()
    .logins.flatMap((l) => l.connections.map((c) => c.schemasServed))
    .sort((x, y) => y - x)

describe('LoginPool: spreading many tenants over the budget', () => {
  const tenants = Array.from({ length: 7 }, () => uniqueTenant('spread'))
  const [t1, t2, t3, t4, t5, t6, t7] = tenants as [string, string, string, string, string, string, string]
  beforeAll(() => createTenants(tenants))
  afterEach(endTestPools)

  it('opens a spare once a connection has served half its bound, and sends new schemas to it', async () => {
    // Arrange: a bound of 4, so half is 2.
    const { pools } = testPools({ budget: 3, maxSchemasPerConnection: 4 })
    const first = await pidOf(pools, t1)

    // Act: t2 is the first connection's second schema; t3 comes when it has served two.
    expect(await pidOf(pools, t2)).toBe(first)
    expect(pools.stats().counters.connectionsOpenedToSpread).toBe(0)
    // The call itself takes the connection there is: no call waits for the spare.
    expect(await pidOf(pools, t3)).toBe(first)
    await until(() => pools.stats().totals.idle === 2)

    // Assert: one spare, opened for no call; the next new schema goes to it, an old one goes back.
    expect(pools.stats().counters).toMatchObject({ connectionsOpenedToSpread: 1, connectionsOpened: 2 })
    const spare = await pidOf(pools, t4)
    expect(spare).not.toBe(first)
    expect(await pidOf(pools, t1)).toBe(first)
    expect(await pidOf(pools, t4)).toBe(spare)
    expect(served(pools)).toEqual([3, 1])
    expect(pools.stats().counters.connectionsRetiredBySchemas).toBe(0)
  })

  it('keeps a few tenants on one connection', async () => {
    const { pools } = testPools({ budget: 3, maxSchemasPerConnection: 6 })
    const pid = await pidOf(pools, t1)
    for (const t of [t2, t3, t1, t2, t3]) expect(await pidOf(pools, t)).toBe(pid)
    await delay(50)
    expect(pools.stats().counters).toMatchObject({ connectionsOpenedToSpread: 0, connectionsOpened: 1 })
    expect(served(pools)).toEqual([3])
  })

  it('never spreads without a bound', async () => {
    const { pools } = testPools({ budget: 3, maxSchemasPerConnection: 0 })
    const pid = await pidOf(pools, t1)
    for (const t of tenants) expect(await pidOf(pools, t)).toBe(pid)
    await delay(50)
    expect(pools.stats().counters).toMatchObject({ connectionsOpenedToSpread: 0, connectionsOpened: 1 })
  })

  it('takes no slot the budget does not have free: with all of it in use, a connection serves on to its bound', async () => {
    const { pools } = testPools({ budget: 1, maxPerScope: 1, maxSchemasPerConnection: 4 })
    const pid = await pidOf(pools, t1)
    for (const t of [t2, t3]) expect(await pidOf(pools, t)).toBe(pid)
    // The fourth schema reaches the bound: the connection is retired at its release.
    expect(await pidOf(pools, t4)).toBe(pid)
    expect(pools.stats().counters).toMatchObject({
      connectionsOpenedToSpread: 0,
      connectionsOpened: 1,
      connectionsRetiredBySchemas: 1,
    })
    expect(await pidOf(pools, t5)).not.toBe(pid)
  })

  it('opens one spare at a time, and none past the budget', async () => {
    const { pools } = testPools({ budget: 2, maxSchemasPerConnection: 4 })
    for (const t of [t1, t2, t3]) await pidOf(pools, t)
    await until(() => pools.stats().totals.idle === 2)
    // Both connections now take new schemas; the spare reaches half its bound with t4 and t5, but the
    // budget (2) is all in use.
    for (const t of [t4, t5, t6, t7]) await pidOf(pools, t)
    await delay(50)
    expect(pools.stats().counters.connectionsOpenedToSpread).toBe(1)
    expect(pools.stats().totals.total).toBeLessThanOrEqual(2)
  })

  it('fails no call when the spare cannot be opened: the failure is counted', async () => {
    const { username, password } = new URL(databaseUrl())
    let down = false
    const { pools } = testPools({
      budget: 3,
      maxSchemasPerConnection: 4,
      // Right for the first connection; refused by the server (28P01) when the spare is opened.
      credentials: async () => ({
        user: decodeURIComponent(username),
        password: down ? 'not-the-password' : decodeURIComponent(password),
      }),
    })
    const pid = await pidOf(pools, t1)
    down = true
    for (const t of [t2, t3, t4]) expect(await pidOf(pools, t)).toBe(pid)
    await until(() => pools.stats().counters.connectFailures === 1)
    expect(pools.stats().counters).toMatchObject({ connectionsOpenedToSpread: 1, connectionsOpened: 1 })
    down = false
    expect(await pidOf(pools, t5)).toEqual(expect.any(Number))
  })
})
