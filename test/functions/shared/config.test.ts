import { ConfigError, readConfig } from '../../../functions/shared/config'
import { defaults } from '../../../lib'

describe('Function: readConfig (every variable the functions read)', () => {
  it('declares each default once, from lib where lib has one', () => {
    const c = readConfig({})
    expect(c).toMatchObject({
      BODY_LIMIT_BYTES: 65_536,
      TENANT_CATALOG_TTL_MS: 30_000,
      POWERTOOLS_SERVICE_NAME: defaults.applicationNamePrefix,
      TENANT_POOLS_SCHEMA_PREFIX: defaults.schemaPrefix,
      TENANT_POOLS_APP_NAME_PREFIX: defaults.applicationNamePrefix,
      TENANT_POOLS_TENANT_SECRET_FALLBACK: 'false',
      MAINTENANCE_CONCURRENCY: 4,
    })
    expect(c.ADMIN_API_KEY).toBeUndefined()
    expect(c.TENANT_POOLS_TENANT_SECRET_PATTERN).toBeUndefined()
  })

  it('reads well-formed values', () => {
    const c = readConfig({
      BODY_LIMIT_BYTES: '1024',
      TENANT_CATALOG_TTL_MS: '0',
      TENANT_POOLS_TENANT_SECRET_PATTERN: 'app/tenants/{tenantId}',
      TENANT_POOLS_BUDGET: '6',
    })
    expect(c).toMatchObject({ BODY_LIMIT_BYTES: 1024, TENANT_CATALOG_TTL_MS: 0, pools: { budget: 6 } })
  })

  it.each([
    ['BODY_LIMIT_BYTES', 'lots'],
    ['BODY_LIMIT_BYTES', '0'],
    ['BODY_LIMIT_BYTES', '64k'],
    ['TENANT_CATALOG_TTL_MS', 'NaN'],
    ['TENANT_CATALOG_TTL_MS', '-1'],
    ['TENANT_CATALOG_TTL_MS', '1.5'],
    ['MAINTENANCE_CONCURRENCY', '0'],
    ['MAINTENANCE_REAP_IDLE_MS', 'soon'],
    ['TENANT_POOLS_TENANT_SECRET_FALLBACK', 'yes'],
    ['TENANT_POOLS_TRUST_TENANT_HEADER', '1'],
    ['TENANT_POOLS_TENANT_SECRET_PATTERN', 'app/tenants/all'],
    ['TENANT_POOLS_BUDGET', 'four'],
    ['TENANT_POOLS_CONNECT_TIMEOUT_MS', '3s'],
  ])('fails on %s=%s, naming the variable and not echoing the value', (name, value) => {
    const err = (() => {
      try {
        readConfig({ [name]: value })
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).toContain(name)
    expect((err as Error).message).not.toContain(`=${value}`)
  })

  it('treats an empty variable as unset', () => {
    expect(readConfig({ BODY_LIMIT_BYTES: '', ADMIN_API_KEY: '' })).toMatchObject({
      BODY_LIMIT_BYTES: 65_536,
    })
    expect(readConfig({ ADMIN_API_KEY: '' }).ADMIN_API_KEY).toBeUndefined()
  })
})

describe('Behaviour: a malformed variable fails the function at init', () => {
  it('refuses to load the orders handlers with BODY_LIMIT_BYTES=64k', async () => {
    const saved = { ...process.env }
    process.env.BODY_LIMIT_BYTES = '64k'
    try {
      let loaded: Promise<unknown> = Promise.resolve()
      jest.isolateModules(() => {
        loaded = import('../../../functions/http/orders/handlers')
      })
      await expect(loaded).rejects.toThrow(/Invalid environment variable BODY_LIMIT_BYTES/)
    } finally {
      process.env = saved
    }
  })
})
