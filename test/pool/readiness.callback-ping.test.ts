// Readiness for a connection lent to a callback (withClient, transaction, a pg.Pool client): freed in
// an earlier invocation, it is pinged before hand-over whatever its idle time, since a freeze may
// have lost its server's FATAL and nothing could send the callback's first statement again. Within
// one invocation it is not; nor is a query() after the boundary (one that meets a dead socket is sent
// again instead).
import { endTestPools, testPools, uniqueTenant } from '../support/db'

afterEach(endTestPools)

describe('Readiness: the ping of a connection lent to a callback', () => {
  it('pings one freed in an earlier invocation; not one freed in this invocation though idle a while, nor for a query()', async () => {
    const tenant = uniqueTenant('rp')
    // One connection, never idle long enough to be pinged for that; the test's clock says how long.
    let now = 1_000_000
    const { pools } = testPools({
      budget: 1,
      maxPerPool: 1,
      validateAfterIdleMs: 600_000,
      clock: { now: () => now },
    })
    const pinged = () => pools.stats().counters.connectionsPinged
    const pid = async (run: 'query' | 'withClient') => {
      const sql = 'SELECT pg_backend_pid() AS pid'
      const { rows } =
        run === 'query' ? await pools.query(tenant, sql) : await pools.withClient(tenant, (c) => c.query(sql))
      return rows[0]?.pid as number
    }
    const first = await pid('query')
    expect(pinged()).toBe(0)

    pools.invocationStarted()
    expect(await pid('withClient')).toBe(first)
    expect(pinged()).toBe(1)
    // A callback's connection is reset before its next use; the reset rides with this query.
    expect(await pid('query')).toBe(first)
    // Freed in this invocation and idle for less than validateAfterIdleMs: it settles, unpinged.
    now += 100
    expect(await pid('withClient')).toBe(first)
    expect(pinged()).toBe(1)

    // A query() after the boundary carries no ping: one that meets a dead socket is sent again.
    pools.invocationStarted()
    expect(await pid('query')).toBe(first)
    expect(pinged()).toBe(1)
    expect(pools.stats().counters.connectionsOpened).toBe(1)
  })

  it('pings a connection idle past a validateAfterIdleMs shorter than the settle after 20 ms idle', async () => {
    const tenant = uniqueTenant('rp')
    let now = 1_000_000
    const { pools } = testPools({
      budget: 1,
      maxPerPool: 1,
      validateAfterIdleMs: 5,
      clock: { now: () => now },
    })
    const pinged = () => pools.stats().counters.connectionsPinged
    await pools.query(tenant, 'SELECT 1')
    now += 10
    await pools.withClient(tenant, (c) => c.query('SELECT 1'))
    expect(pinged()).toBe(1)
    // The callback's connection is reset before its next use (a reset is a liveness check too).
    await pools.query(tenant, 'SELECT 1')
    now += 10
    await pools.query(tenant, 'SELECT 1')
    expect(pinged()).toBe(2)
    // Idle less than the setting: not pinged.
    now += 2
    await pools.query(tenant, 'SELECT 1')
    expect(pinged()).toBe(2)
  })
})
