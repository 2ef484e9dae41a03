import {
  countBackends,
  createTenants,
  endTestPools,
  eventually,
  testPools,
  uniqueTenant,
} from '../support/db'

describe('Behaviour: aggressive idle', () => {
  afterEach(endTestPools)

  it('closes idle connections, then the unused pool, by timer', async () => {
    // Prepare
    const tenant = uniqueTenant()
    await createTenants([tenant])
    // The TTL well past the idle timeout: the check between the two cannot be raced on a slow machine.
    const { pools, prefix } = testPools({ idleTimeoutMs: 150, poolTtlMs: 2_500, sweepIntervalMs: 25 })
    await pools.query(tenant, 'SELECT 1')
    expect(await countBackends(prefix)).toBe(1)

    // Act + Assess: the connection goes first, the pool after its TTL
    expect(await eventually(async () => (await countBackends(prefix)) === 0)).toBe(true)
    expect(pools.stats().pools).toHaveLength(1)
    expect(await eventually(() => pools.stats().pools.length === 0)).toBe(true)
    expect(pools.stats().counters).toMatchObject({ connectionsClosed: 1, poolsExpired: 1 })
  })

  it('also sweeps at the start of a call, because timers do not run while frozen', async () => {
    // Prepare: a clock we move by hand, so the sweep timer (which reads it too) sees no time pass
    let now = 1_000_000
    const clock = { now: () => now }
    const [stale, fresh] = [uniqueTenant('stale'), uniqueTenant('fresh')]
    await createTenants([stale, fresh])
    const { pools, prefix } = testPools({
      clock,
      idleTimeoutMs: 10_000,
      poolTtlMs: 60_000,
      sweepIntervalMs: 1_000,
    })
    await pools.query(stale, 'SELECT 1')

    // Act: 61 s pass "while frozen", then a call for another tenant arrives
    now += 61_000
    await pools.query(fresh, 'SELECT 1')

    // Assess
    expect(pools.stats().pools.map((p) => p.key)).toEqual([fresh])
    expect(pools.stats().counters).toMatchObject({ poolsExpired: 1, connectionsClosed: 1 })
    expect(await eventually(async () => (await countBackends(prefix)) === 1)).toBe(true)
  })

  it('closes a connection past its max lifetime instead of reusing it', async () => {
    let now = 1_000_000
    const clock = { now: () => now }
    const tenant = uniqueTenant()
    await createTenants([tenant])
    // No other limit reached by the jump: only the lifetime can retire the connection.
    const { pools } = testPools({
      clock,
      maxLifetimeMs: 300_000,
      idleTimeoutMs: 3_600_000,
      poolTtlMs: 3_600_000,
      validateAfterIdleMs: 3_600_000,
    })
    const first = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')
    now += 299_000
    expect((await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')).rows).toEqual(
      first.rows,
    )

    now += 2_000
    const second = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')

    expect(second.rows[0]?.pid).not.toBe(first.rows[0]?.pid)
    expect(pools.stats().counters.connectionsOpened).toBe(2)
  })
})
