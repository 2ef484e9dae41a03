import { InvalidTenantError } from '../../lib'
import { countBackends, endTestPools, testPools } from '../support/db'

const hostile: unknown[] = [
  "acme'; DROP SCHEMA public CASCADE; --",
  'acme"; SELECT pg_sleep(10); --',
  'tenant_a,public',
  '',
  ' ',
  'Acme',
  'ácme',
  '租户',
  '🙂',
  'a b',
  'a-b',
  'a:b',
  '../etc',
  'a\u0000b',
  'x'.repeat(10 * 1024),
  'a'.repeat(49),
  null,
  undefined,
  42,
  {},
  ['acme'],
]

describe('Behaviour: bad tenant input never reaches the server', () => {
  afterEach(endTestPools)

  it.each(hostile.map((value) => [JSON.stringify(value)?.slice(0, 40) ?? String(value), value]))(
    'rejects %s with InvalidTenantError on every entry point',
    async (_label, value) => {
      // Prepare
      const { pools, prefix } = testPools()
      const id = value as string

      // Act + Assess
      await expect(pools.query(id, 'SELECT 1')).rejects.toBeInstanceOf(InvalidTenantError)
      await expect(pools.withClient(id, async () => 1)).rejects.toBeInstanceOf(InvalidTenantError)
      await expect(pools.transaction(id, async () => 1)).rejects.toBeInstanceOf(InvalidTenantError)
      await expect(pools.evict(id)).rejects.toBeInstanceOf(InvalidTenantError)
      expect(() => pools.forTenant(id)).toThrow(InvalidTenantError)
      // An absent app is allowed (no app), so undefined stands in as null here.
      const app = (value === undefined ? null : value) as string
      await expect(pools.query('acme', 'SELECT 1', [], { app })).rejects.toMatchObject({
        code: 'INVALID_TENANT',
      })

      const { counters, pools: list } = pools.stats()
      expect(list).toHaveLength(0)
      expect(counters.connectionsOpened + counters.connectFailures).toBe(0)
      expect(await countBackends(prefix)).toBe(0)
    },
  )

  it('never echoes the rejected id in the error message', async () => {
    const { pools } = testPools()
    const secretish = `x${'y'.repeat(100)}'; DROP`
    const err = await pools.query(secretish, 'SELECT 1').catch((e: Error) => e)
    expect(err).toBeInstanceOf(InvalidTenantError)
    expect((err as Error).message).not.toContain('DROP')
    expect((err as Error).message).toMatch(/a-z, 0-9 and _/)
  })

  it('quotes a schemaFor result as an identifier, so it cannot inject settings', async () => {
    // A schemaFor that returns something odd still ends up as one quoted search_path entry (then the
    // temporary schema, named last).
    const { pools } = testPools({ schemaFor: (id) => `odd schema ${id}` })
    const { rows } = await pools.query<{ search_path: string }>('acme', 'SHOW search_path')
    expect(rows[0]?.search_path).toBe('"odd schema acme", pg_temp')
  })
})

describe('Behaviour: validation is never skipped by the cache of validated ids', () => {
  afterEach(endTestPools)

  it('rejects "acme:web" even after acme with app web was used', async () => {
    const { pools } = testPools()
    await pools.query('acme', 'SELECT 1', [], { app: 'web' })

    await expect(pools.query('acme:web', 'SELECT 1')).rejects.toBeInstanceOf(InvalidTenantError)
    await expect(pools.query('acme', 'SELECT 1', [], { app: 'web:x' })).rejects.toBeInstanceOf(
      InvalidTenantError,
    )
  })

  it('rejects an empty app even once the tenant is warm (it is not the same as no app)', async () => {
    const { pools } = testPools()
    await pools.query('acme', 'SELECT 1')

    await expect(pools.query('acme', 'SELECT 1', [], { app: '' })).rejects.toBeInstanceOf(InvalidTenantError)
    expect(() => pools.forTenant('acme', { app: '' })).toThrow(InvalidTenantError)
    expect(pools.stats().pools.map((p) => p.key)).toEqual(['acme'])
  })
})
