// What stats() and counters() report (stats.ts): per scope, per login, per cluster and in total, with a
// connection held and another idle, on two clusters, one with a cap and an unreachable reader.
import {
  clusterBUrl,
  createTenants,
  endTestPools,
  holdConnection,
  testPools,
  uniqueTenant,
} from '../support/db'
import { refusingAddress } from '../support/free-port'

afterEach(endTestPools)

describe('Registry: stats()', () => {
  it('adds up held and idle connections per scope, login, cluster and in total', async () => {
    const [a, b] = [uniqueTenant('sa'), uniqueTenant('sb')]
    await createTenants([a, b])
    let now = 1_000_000
    const { pools } = testPools({
      clock: { now: () => now },
      readerRetryAfterMs: 1_000,
      clusters: {
        main: { reader: await refusingAddress() },
        b: { connectionString: clusterBUrl(), maxConnections: 2 },
      },
    })
    await pools.query(a, 'SELECT 1', [], { app: 'web' })
    const held = await holdConnection(pools, a)
    await pools.query(b, 'SELECT 1', [], { cluster: 'b' })
    // The reader cannot be reached: the read goes to the writer and the reader is skipped.
    await pools.query(a, 'SELECT 1', [], { readOnly: true })
    const s = pools.stats()
    const scope = (key: string) => s.pools.find((p) => p.key === key)
    expect(scope(a)).toMatchObject({ total: 1, idle: 0, active: 1, cluster: 'main', readOnly: false })
    expect(scope(`${b}@b`)).toMatchObject({ total: 1, idle: 1, active: 0, cluster: 'b' })
    expect(s.clusters).toEqual([
      { name: 'main', total: 2, idle: 1, active: 1, waiting: 0, cap: null, readerSkipped: true },
      { name: 'b', total: 1, idle: 1, active: 0, waiting: 0, cap: 2, readerSkipped: false },
    ])
    expect(s.totals).toEqual({
      scopes: s.scopes.length,
      pools: s.scopes.length,
      total: 3,
      idle: 2,
      active: 1,
      waiting: 0,
    })
    expect(s.logins.filter((l) => l.reader)).toHaveLength(1)
    expect(s.logins.filter((l) => !l.reader).map((l) => [l.cluster, l.total])).toEqual([
      ['main', 2],
      ['b', 1],
    ])
    // The skip ends at exactly readerRetryAfterMs.
    now += 999
    expect(pools.stats().clusters[0]?.readerSkipped).toBe(true)
    now += 1
    expect(pools.stats().clusters[0]?.readerSkipped).toBe(false)
    held.release()
    await held.done
  })

  it('reads the counters alone with counters(): the same figures as stats(), as a copy', async () => {
    const a = uniqueTenant('sc')
    await createTenants([a])
    const { pools } = testPools()
    await pools.query(a, 'SELECT 1')
    await pools.query(a, 'SELECT 1')
    const counters = pools.counters()
    expect(counters).toEqual(pools.stats().counters)
    expect(counters).toMatchObject({ checkouts: 2, connectionsOpened: 1 })
    // A snapshot: what comes later changes the registry's, not the one already read.
    await pools.query(a, 'SELECT 1')
    expect(counters.checkouts).toBe(2)
    expect(pools.counters().checkouts).toBe(3)
  })

  it('reports scopes under their name, and under the old pool names until the next minor version', async () => {
    const [a, b] = [uniqueTenant('sn'), uniqueTenant('sm')]
    await createTenants([a, b])
    const { pools } = testPools({ maxScopes: 1 })
    await pools.query(a, 'SELECT 1')
    await pools.query(b, 'SELECT 1')

    const stats = pools.stats()
    expect(stats.scopes.map((s) => s.tenantId)).toEqual([b])
    expect(stats.pools).toBe(stats.scopes)
    expect(stats.totals).toMatchObject({ scopes: 1, pools: 1 })
    expect(stats.counters).toMatchObject({
      scopesCreated: 2,
      poolsCreated: 2,
      scopesEvicted: 1,
      poolsEvicted: 1,
    })
    expect(pools.counters()).toMatchObject({
      scopesCreated: 2,
      poolsCreated: 2,
      scopesEvicted: 1,
      poolsEvicted: 1,
    })
  })
})
