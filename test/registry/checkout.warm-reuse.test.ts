import { createTenants, endTestPools, testPools, uniqueTenant } from '../support/db'

describe('Behaviour: warm reuse', () => {
  afterEach(endTestPools)

  it('serves two sequential calls from the same backend and creates exactly one pool', async () => {
    // Prepare
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools()

    // Act
    const first = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')
    const second = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')

    // Assess
    expect(second.rows[0]?.pid).toBe(first.rows[0]?.pid)
    const { counters, pools: list } = pools.stats()
    expect(counters.poolsCreated).toBe(1)
    expect(counters.connectionsOpened).toBe(1)
    expect(list.map((p) => p.key)).toEqual([tenant])
  })

  it('keeps separate pools for the apps of one tenant', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools()

    const web = await pools.query(tenant, 'SELECT current_setting($1) AS name', ['application_name'], {
      app: 'web',
    })
    const mobile = await pools.query(tenant, 'SELECT current_setting($1) AS name', ['application_name'], {
      app: 'mobile',
    })

    expect(web.rows[0]?.name).toMatch(new RegExp(`:${tenant}:web$`))
    expect(mobile.rows[0]?.name).toMatch(new RegExp(`:${tenant}:mobile$`))
    expect(
      pools
        .stats()
        .pools.map((p) => p.key)
        .sort(),
    ).toEqual([`${tenant}:mobile`, `${tenant}:web`])
  })
})
