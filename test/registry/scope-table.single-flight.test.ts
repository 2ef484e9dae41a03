import { countBackends, createTenants, endTestPools, testPools, uniqueTenant } from '../support/db'

describe('Behaviour: single flight', () => {
  afterEach(endTestPools)

  it('50 concurrent first calls create one pool and never more than its max connections', async () => {
    // Prepare
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, prefix } = testPools({ maxPerPool: 2, budget: 4 })
    let peak = 0
    const sampler = setInterval(() => {
      peak = Math.max(peak, pools.stats().totals.total)
    }, 1)

    // Act: pg_sleep keeps connections busy so the calls really overlap
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        pools.query<{ i: number }>(tenant, 'SELECT $1::int AS i, pg_sleep(0.005)', [i]),
      ),
    )
    clearInterval(sampler)

    // Assess
    expect(results.map((r) => r.rows[0]?.i)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    const { counters } = pools.stats()
    expect(counters.poolsCreated).toBe(1)
    expect(counters.connectionsOpened).toBe(2)
    expect(peak).toBeLessThanOrEqual(2)
    expect(await countBackends(prefix)).toBe(2)
  })
})
