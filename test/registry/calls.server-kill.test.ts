import {
  createTenants,
  endTestPools,
  eventually,
  terminateBackends,
  testPools,
  uniqueTenant,
} from '../support/db'

describe('Behaviour: a server-side kill never crashes the process', () => {
  afterEach(endTestPools)

  it('logs and counts the kill of an idle connection, and the next call succeeds', async () => {
    // Prepare
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, prefix, logs } = testPools({ validateAfterIdleMs: 0 })
    const before = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')

    // Act: an uncaught 'error' here would fail this test file
    expect(await terminateBackends(prefix)).toBe(1)

    // Assess
    expect(await eventually(() => pools.stats().counters.serverKills === 1)).toBe(true)
    expect(logs).toContainEqual(
      expect.objectContaining({
        message: 'connection lost',
        extra: [{ poolKey: tenant, sqlState: '57P01' }],
      }),
    )
    expect(pools.stats().pools[0]).toMatchObject({ total: 0, idle: 0 })
    const after = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')
    expect(after.rows[0]?.pid).not.toBe(before.rows[0]?.pid)
  })

  it('reports a kill during a statement to that caller only', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, prefix } = testPools()
    const running = pools.query(tenant, 'SELECT pg_sleep(5)')
    expect(await eventually(async () => (await terminateBackends(prefix, { activeOnly: true })) === 1)).toBe(
      true,
    )

    await expect(running).rejects.toMatchObject({ code: '57P01' })
    // Counted as a kill seen while idle is, once.
    expect(pools.stats().counters).toMatchObject({ serverKills: 1, connectionsLost: 1 })
    await expect(pools.query(tenant, 'SELECT 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] })
  })
})
