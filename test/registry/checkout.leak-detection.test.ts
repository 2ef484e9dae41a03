import { createTenants, endTestPools, sleep, testPools, uniqueTenant } from '../support/db'

describe('Behaviour: leak detection', () => {
  afterEach(endTestPools)

  it('warns with the pool key and the acquiring stack when a connection is held too long', async () => {
    // Prepare
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, logs } = testPools({ leakDetectionMs: 250 })
    // Warm first (opening a connection is the slow part), so the call within the threshold is fast.
    await pools.query(tenant, 'SELECT 1')
    const warmed = pools.stats().counters.leaksSuspected

    // Act: one warm call within the threshold, one holding its connection for 1 s
    await pools.query(tenant, 'SELECT 1')
    await pools.withClient(tenant, async () => sleep(1_000))

    // Assess
    const leaks = logs.filter((l) => l.message.includes('possible leak')).slice(warmed)
    expect(leaks).toHaveLength(1)
    expect(leaks[0]?.extra[0]).toMatchObject({ poolKey: tenant, heldMs: 250 })
    expect(String(leaks[0]?.extra[0]?.acquiredAt)).toMatch(/leak-detection\.test\.ts/)
    expect(pools.stats().counters.leaksSuspected - warmed).toBe(1)
  })

  it('stays silent, and captures nothing, when disabled', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, logs } = testPools()

    await pools.withClient(tenant, async () => sleep(150))

    expect(logs.filter((l) => l.message.includes('possible leak'))).toEqual([])
    expect(pools.stats().counters.leaksSuspected).toBe(0)
  })
})
