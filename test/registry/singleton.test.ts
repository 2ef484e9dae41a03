import { getTenantPools, resetTenantPools, TenantPools } from '../../lib'

describe('Module: singleton', () => {
  const saved = { ...process.env }
  afterEach(async () => {
    await resetTenantPools()
    process.env = { ...saved }
  })

  it('builds one registry from the environment and returns it on every later call', () => {
    process.env.TENANT_POOLS_BUDGET = '6'

    const first = getTenantPools()
    const second = getTenantPools()

    expect(first).toBeInstanceOf(TenantPools)
    expect(second).toBe(first)
    expect(first.stats().budget.limit).toBe(6)
  })

  it('ends the registry on reset; the next call builds a new one', async () => {
    const first = getTenantPools()

    await resetTenantPools()
    const second = getTenantPools()

    expect(second).not.toBe(first)
    await expect(first.query('acme', 'SELECT 1')).rejects.toMatchObject({ code: 'POOLS_ENDED' })
  })

  it('fails fast, naming the variable, when the environment is malformed', () => {
    process.env.TENANT_POOLS_MAX_POOLS = 'many'
    expect(() => getTenantPools()).toThrow(/TENANT_POOLS_MAX_POOLS/)
  })
})
