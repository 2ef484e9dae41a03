import { countBackends, createTenants, endTestPools, testPools, uniqueTenant } from '../support/db'

describe('Behaviour: LRU of pools', () => {
  afterEach(endTestPools)

  it('past maxPools ends and removes the least recently used pool', async () => {
    // Prepare
    const [t1, t2, t3, t4] = [1, 2, 3, 4].map((i) => uniqueTenant(`lru${i}`)) as [
      string,
      string,
      string,
      string,
    ]
    await createTenants([t1, t2, t3, t4])
    const { pools, prefix } = testPools({ maxPools: 3, budget: 4, maxPerPool: 1 })
    await pools.query(t1, 'SELECT 1')
    await pools.query(t2, 'SELECT 1')
    await pools.query(t3, 'SELECT 1')
    await pools.query(t1, 'SELECT 1') // t2 is now the least recently used

    // Act
    await pools.query(t4, 'SELECT 1')

    // Assess
    const { pools: list, counters } = pools.stats()
    expect(list.map((p) => p.key).sort()).toEqual([t1, t3, t4].sort())
    expect(counters.poolsEvicted).toBe(1)
    // One login, calls one at a time: one connection, rebound from scope to scope
    expect(counters.connectionsOpened).toBe(1)
    expect(await countBackends(prefix)).toBe(1)
  })

  it('does not end a pool that has a call in flight', async () => {
    const [t1, t2] = [uniqueTenant('busy'), uniqueTenant('next')]
    await createTenants([t1, t2])
    const { pools } = testPools({ maxPools: 1, budget: 2, maxPerPool: 1 })

    const results = await Promise.all([
      pools.query(t1, 'SELECT pg_sleep(0.2), 1 AS ok'),
      pools.query(t2, 'SELECT 2 AS ok'),
    ])

    expect(results.map((r) => r.rows[0]?.ok)).toEqual([1, 2])
    expect(pools.stats().counters.poolsEvicted).toBe(0)
  })
})
