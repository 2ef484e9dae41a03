import {
  createTenants,
  endTestPools,
  eventually,
  resumeBackend,
  stopBackend,
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

  it('counts a kill that a liveness check met as its answer, and serves the call on a new connection', async () => {
    // Prepare: an idle connection whose backend is stopped, then told to terminate: it sends its
    // FATAL only once resumed, after the ping below went out (so pg emits no 'error' while idle).
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, prefix } = testPools()
    const { rows } = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')
    const pid = rows[0]?.pid as number
    stopBackend(pid)
    expect(await terminateBackends(prefix)).toBe(1)

    // Act: a callback's checkout in a new invocation pings the connection first.
    pools.invocationStarted()
    const served = pools.withClient(
      tenant,
      async (c) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid,
    )
    expect(await eventually(() => pools.stats().counters.connectionsPinged === 1)).toBe(true)
    resumeBackend(pid)

    // Assess
    expect(await served).not.toBe(pid)
    expect(pools.stats().counters).toMatchObject({ serverKills: 1, connectionsOpened: 2 })
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
