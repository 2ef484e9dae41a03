import { countBackends, createTenants, endTestPools, testPools, uniqueTenant, withAdmin } from '../support/db'

interface Row {
  tenant: string
  schema: string
  app: string
}

const IDENTITY = `SELECT w.tenant, current_schema() AS schema, current_setting('application_name') AS app FROM whoami w`

describe('Behaviour: tenant isolation', () => {
  afterEach(endTestPools)

  it('2,000 interleaved concurrent calls over 20 tenants and two apps see only their own schema', async () => {
    // Prepare
    const tenants = Array.from({ length: 20 }, (_, i) => uniqueTenant(`iso${i}`))
    await createTenants(tenants)
    // A small budget forces constant hand-over of slots between pools: the risky path.
    const { pools, prefix } = testPools({ budget: 8, maxPerPool: 2, connectTimeoutMs: 20_000 })
    const calls = Array.from({ length: 2_000 }, (_, i) => ({
      tenant: tenants[(i * 7) % tenants.length] as string,
      app: i % 3 === 0 ? 'mobile' : undefined,
      via: i % 3,
    }))
    let peak = 0
    const sampler = setInterval(() => {
      peak = Math.max(peak, pools.stats().budget.used)
    }, 1)

    // Act
    const seen = await Promise.all(
      calls.map(async ({ tenant, app, via }) => {
        const opts = app ? { app } : {}
        if (via === 0) return (await pools.query<Row>(tenant, IDENTITY, [], opts)).rows[0]
        if (via === 1)
          return pools.withClient(tenant, async (c) => (await c.query<Row>(IDENTITY)).rows[0], opts)
        return pools.transaction(tenant, async (c) => (await c.query<Row>(IDENTITY)).rows[0], opts)
      }),
    )
    clearInterval(sampler)

    // Assess
    const mismatches = seen.filter((row, i) => {
      const { tenant, app } = calls[i] as (typeof calls)[number]
      const key = app ? `${tenant}:${app}` : tenant
      return row?.tenant !== tenant || row.schema !== `tenant_${tenant}` || row.app !== `${prefix}:${key}`
    })
    expect(seen).toHaveLength(2_000)
    expect(mismatches).toEqual([])
    expect(peak).toBeLessThanOrEqual(8)
    expect(await countBackends(prefix)).toBeLessThanOrEqual(8)
  })

  it('resolves unqualified names only in its own schema', async () => {
    const [a, b] = [uniqueTenant('a'), uniqueTenant('b')]
    await createTenants([a, b])
    await withAdmin((admin) => admin.query(`CREATE TABLE tenant_${a}.only_a (x int)`))
    const { pools } = testPools()

    await expect(pools.query(a, 'SELECT * FROM only_a')).resolves.toMatchObject({ rowCount: 0 })
    await expect(pools.query(b, 'SELECT * FROM only_a')).rejects.toMatchObject({ code: '42P01' })
    const { rows } = await pools.query<{ search_path: string }>(b, 'SHOW search_path')
    // Quoted as the startup packet sets it, or bare as a rebind's SET leaves it; the temporary schema
    // named last, so that a temporary relation never shadows the schema's own
    expect(rows[0]?.search_path.replace(/"/g, '')).toBe(`tenant_${b}, pg_temp`)
  })
})
