import { defaults, InvalidOptionsError, optionsFromEnv, TenantPools } from '../../lib'
import { resolveOptions } from '../../lib/config/options'

describe('Module: options', () => {
  describe('Function: resolveOptions', () => {
    it('merges over the defaults, keeping 0 where 0 is given', () => {
      const o = resolveOptions({ idleSessionTimeoutMs: 0, statementTimeoutMs: 0, budget: 6 })
      expect(o).toMatchObject({ ...defaults, idleSessionTimeoutMs: 0, statementTimeoutMs: 0, budget: 6 })
      expect(o.schemaFor('acme')).toBe('tenant_acme')
    })

    it('rejects an unknown key, naming it', () => {
      expect(() => resolveOptions({ maxConnections: 3 } as never)).toThrow(/"maxConnections"/)
    })

    it('names an unknown key inside a cluster with its path, not as a top-level option', () => {
      const misspelt = { clusters: { b: { host: 'b', reader: { host: 'r', usr: 'x' } } } } as never
      expect(() => resolveOptions(misspelt)).toThrow(
        /^Invalid TenantPools option "clusters\.b\.reader\.usr": /,
      )
    })

    it.each([
      [{ budget: 0 }, 'budget'],
      [{ maxPerPool: 1.5 }, 'maxPerPool'],
      [{ connectTimeoutMs: -1 }, 'connectTimeoutMs'],
      [{ port: 70_000 }, 'port'],
      [{ credentials: 'secret' }, 'credentials'],
      [{ applicationNamePrefix: 'has space' }, 'applicationNamePrefix'],
    ])('rejects %p, naming %s', (options, key) => {
      expect(() => resolveOptions(options as never)).toThrow(InvalidOptionsError)
      expect(() => resolveOptions(options as never)).toThrow(`"${key}"`)
    })

    it('rejects a per-scope max above the environment budget, under either name', () => {
      expect(() => resolveOptions({ maxPerScope: 5, budget: 4 })).toThrow(/maxPerScope.*exceeds the budget/)
      expect(() => resolveOptions({ maxPerPool: 5, budget: 4 })).toThrow(/maxPerScope.*exceeds the budget/)
    })

    it.each([
      ['maxPerPool', 'maxPerScope', 1],
      ['maxPools', 'maxScopes', 7],
      ['poolTtlMs', 'scopeTtlMs', 1234],
    ] as const)('takes the old name %s for %s, until the next minor version', (old, current, value) => {
      const resolved = resolveOptions({ [old]: value }) as unknown as Record<string, unknown>
      expect(resolved[current]).toBe(value)
      expect(old in resolved).toBe(false)
      // Both given: they must agree.
      expect(
        resolveOptions({ [old]: value, [current]: value }) as unknown as Record<string, unknown>,
      ).toMatchObject({
        [current]: value,
      })
      expect(() => resolveOptions({ [old]: value, [current]: value + 1 })).toThrow(
        new RegExp(`"${old}" and "${current}"`),
      )
    })

    it.each([
      ['TENANT_POOLS_MAX_PER_POOL', 'TENANT_POOLS_MAX_PER_SCOPE', 'maxPerScope'],
      ['TENANT_POOLS_MAX_POOLS', 'TENANT_POOLS_MAX_SCOPES', 'maxScopes'],
      ['TENANT_POOLS_POOL_TTL_MS', 'TENANT_POOLS_SCOPE_TTL_MS', 'scopeTtlMs'],
    ])('reads the old variable %s as %s does', (old, current, option) => {
      const fromOld = resolveOptions(optionsFromEnv({ [old]: '3' })) as unknown as Record<string, unknown>
      const fromNew = resolveOptions(optionsFromEnv({ [current]: '3' })) as unknown as Record<string, unknown>
      expect(fromOld[option]).toBe(3)
      expect(fromNew[option]).toBe(3)
      expect(() => resolveOptions(optionsFromEnv({ [old]: '3', [current]: '2' }))).toThrow(
        InvalidOptionsError,
      )
    })

    it('takes a per-scope max equal to the budget', () => {
      expect(resolveOptions({ maxPerScope: 4, budget: 4 })).toMatchObject({ maxPerScope: 4, budget: 4 })
    })

    it('names both unknown keys, and says what is wrong with a bad value', () => {
      expect(() => resolveOptions({ a: 1, b: 2 } as never)).toThrow(/^Invalid TenantPools option "a, b": /)
      expect(() => resolveOptions({ budget: 0 })).toThrow(
        new InvalidOptionsError('Invalid TenantPools option "budget": Too small: expected number to be >=1'),
      )
    })

    it.each([
      [{ budget: 10_000, maxPerScope: 1 }],
      [{ idleTimeoutMs: 2_147_483_647 }],
      [{ maxSchemasPerConnection: 1_000_000 }],
      [{ masterSchema: 'm'.repeat(63) }],
      [{ applicationNamePrefix: 'a'.repeat(30) }],
      [{ applicationNamePrefix: 'Az09_.-' }],
      [{ applicationNamePrefix: '' }],
      [{ port: 1 }],
      [{ port: 65_535 }],
      [{ connectTimeoutMs: 1, sweepIntervalMs: 1, validationTimeoutMs: 1 }],
      [{ leakDetectionMs: 0, readerRetryAfterMs: 0 }],
      [{ mainCluster: 'a' }],
      [{ mainCluster: `a${'b'.repeat(31)}` }],
      [{ mainCluster: 'a-0_z' }],
      [{ password: '' }],
      [{ ssl: 'verify-full' }],
      [{ ssl: false }],
      [{ ssl: { rejectUnauthorized: true } }],
      [{ clock: { now: () => 0 } }],
      [{ logger: {} }],
      [{ clusters: { b: { host: 'b.example', reader: { host: 'r', port: 5433 }, maxConnections: 1 } } }],
    ])('takes %p, at the edge of what is allowed', (options) => {
      expect(() => resolveOptions(options as never)).not.toThrow()
    })

    it.each([
      [{ budget: 10_001 }, 'budget'],
      [{ idleTimeoutMs: 2_147_483_648 }, 'idleTimeoutMs'],
      [{ idleTimeoutMs: -1 }, 'idleTimeoutMs'],
      [{ maxSchemasPerConnection: 1_000_001 }, 'maxSchemasPerConnection'],
      [{ masterSchema: 'm'.repeat(64) }, 'masterSchema'],
      [{ masterSchema: '' }, 'masterSchema'],
      [{ host: 'h'.repeat(10_001) }, 'host'],
      [{ applicationNamePrefix: 'a'.repeat(31) }, 'applicationNamePrefix'],
      [{ port: 0 }, 'port'],
      [{ sweepIntervalMs: 0 }, 'sweepIntervalMs'],
      [{ validationTimeoutMs: 0 }, 'validationTimeoutMs'],
      [{ maxLifetimeMs: 0 }, 'maxLifetimeMs'],
      [{ mainCluster: '0a' }, 'mainCluster'],
      [{ mainCluster: `a${'b'.repeat(32)}` }, 'mainCluster'],
      [{ mainCluster: 'A' }, 'mainCluster'],
      [{ mainCluster: 'x main' }, 'mainCluster'],
      [{ ssl: 'prefer' }, 'ssl'],
      [{ schemaFor: 'tenant_' }, 'schemaFor'],
      [{ clock: { now: 1 } }, 'clock'],
      [{ clock: null }, 'clock'],
      [{ logger: null }, 'logger'],
      [{ keepFullConnection: 1 }, 'keepFullConnection'],
      [{ proxySafe: 'true' }, 'proxySafe'],
      [{ clusters: { b: { reader: { port: 0 } } } }, 'clusters.b.reader.port'],
      [{ clusters: { b: { maxConnections: 10_001 } } }, 'clusters.b.maxConnections'],
    ])('refuses %p, naming %s', (options, key) => {
      expect(() => resolveOptions(options as never)).toThrow(
        new RegExp(`^Invalid TenantPools option "${key}": `),
      )
    })

    it('says which option must be a function', () => {
      expect(() => resolveOptions({ schemaFor: 'x' } as never)).toThrow(/expected schemaFor to be a function/)
    })

    it('keeps the login out of the merged options, and gives the system clock by default', () => {
      const o = resolveOptions({ user: 'app', password: 'pw' }) as unknown as Record<string, unknown>
      expect('user' in o).toBe(false)
      expect('password' in o).toBe(false)
      expect(typeof (o.clock as { now: () => number }).now()).toBe('number')
    })

    it('is applied by the TenantPools constructor', () => {
      expect(() => new TenantPools({ budget: -1 })).toThrow(InvalidOptionsError)
    })
  })

  describe('Function: optionsFromEnv', () => {
    it('reads every TENANT_POOLS_* variable and DATABASE_URL', () => {
      const o = optionsFromEnv({
        DATABASE_URL: 'postgres://db/x',
        TENANT_POOLS_BUDGET: '8',
        TENANT_POOLS_MAX_PER_POOL: '3',
        TENANT_POOLS_PROXY_SAFE: 'true',
        TENANT_POOLS_SCHEMA_PREFIX: 'org_',
        TENANT_POOLS_MASTER_SCHEMA: 'catalog',
        TENANT_POOLS_IDLE_SESSION_TIMEOUT_MS: '0',
      })
      expect(o).toMatchObject({
        connectionString: 'postgres://db/x',
        budget: 8,
        maxPerPool: 3,
        proxySafe: true,
        masterSchema: 'catalog',
        idleSessionTimeoutMs: 0,
      })
      expect(o.schemaFor?.('acme')).toBe('org_acme')
    })

    describe('TENANT_POOLS_MAX_SCHEMAS_PER_CONNECTION', () => {
      const VAR = 'TENANT_POOLS_MAX_SCHEMAS_PER_CONNECTION'
      const resolved = (value: string) => resolveOptions(optionsFromEnv({ [VAR]: value }))

      it('sets maxSchemasPerConnection, 0 (no bound) included; unset, the default of 225', () => {
        expect(resolved('100').maxSchemasPerConnection).toBe(100)
        expect(resolved('0').maxSchemasPerConnection).toBe(0)
        expect(resolved('').maxSchemasPerConnection).toBe(225)
        expect(defaults.maxSchemasPerConnection).toBe(225)
      })

      it.each(['many', '1.5', 'Infinity', '1e400'])('refuses %p, naming the variable', (value) => {
        expect(() => optionsFromEnv({ [VAR]: value })).toThrow(
          new InvalidOptionsError(`${VAR} must be an integer`),
        )
      })

      it.each(['-1', '1000001'])('refuses %p when the registry is built, naming the option', (value) => {
        expect(() => new TenantPools(optionsFromEnv({ [VAR]: value }))).toThrow(InvalidOptionsError)
        expect(() => resolved(value)).toThrow(/^Invalid TenantPools option "maxSchemasPerConnection": /)
      })

      it('refuses Infinity given as an option: 0 is no bound', () => {
        expect(() => resolveOptions({ maxSchemasPerConnection: Number.POSITIVE_INFINITY })).toThrow(
          /"maxSchemasPerConnection"/,
        )
      })
    })

    it('ignores unset and empty variables', () => {
      expect(optionsFromEnv({ TENANT_POOLS_BUDGET: '' })).toEqual({})
    })

    it('reads clusters from TENANT_POOLS_CLUSTERS, a secret per cluster becoming its credentials', () => {
      const o = optionsFromEnv({
        TENANT_POOLS_CLUSTERS: JSON.stringify({
          main: { reader: 'postgres://main-ro:5433/app' },
          b: { host: 'b.example', port: 6432, secretId: 'app/b', maxConnections: 2, ssl: 'require' },
        }),
        TENANT_POOLS_READER_RETRY_AFTER_MS: '2000',
      })
      expect(o.readerRetryAfterMs).toBe(2000)
      expect(o.clusters?.main).toEqual({ reader: { connectionString: 'postgres://main-ro:5433/app' } })
      expect(o.clusters?.b).toMatchObject({
        host: 'b.example',
        port: 6432,
        maxConnections: 2,
        ssl: 'require',
      })
      expect(typeof o.clusters?.b?.credentials).toBe('function')
      expect(() => new TenantPools(o)).not.toThrow()
    })

    it.each([
      ['not JSON', '{b:'],
      ['a bad cluster name', '{"B!":{"host":"x"}}'],
      ['an unknown key', '{"b":{"host":"x","pasword":"y"}}'],
      ['a cap of 0', '{"b":{"host":"x","maxConnections":0}}'],
    ])('rejects TENANT_POOLS_CLUSTERS with %s, naming the variable and never echoing it', (_, value) => {
      expect(() => optionsFromEnv({ TENANT_POOLS_CLUSTERS: value })).toThrow(/^TENANT_POOLS_CLUSTERS/)
      try {
        optionsFromEnv({ TENANT_POOLS_CLUSTERS: value })
      } catch (err) {
        expect((err as Error).message).not.toContain(value)
      }
    })

    it('reads TENANT_POOLS_KEEP_FULL_CONNECTION; unset, connections at the bound all close', () => {
      const resolved = (env: NodeJS.ProcessEnv) => resolveOptions(optionsFromEnv(env)).keepFullConnection
      expect(resolved({ TENANT_POOLS_KEEP_FULL_CONNECTION: 'true' })).toBe(true)
      expect(resolved({ TENANT_POOLS_KEEP_FULL_CONNECTION: 'false' })).toBe(false)
      expect(resolved({})).toBe(false)
      expect(defaults.keepFullConnection).toBe(false)
      expect(() => resolveOptions({ keepFullConnection: 'yes' as unknown as boolean })).toThrow(
        /^Invalid TenantPools option "keepFullConnection": /,
      )
    })

    it.each([
      ['TENANT_POOLS_BUDGET', 'four'],
      ['TENANT_POOLS_IDLE_TIMEOUT_MS', '1.5'],
      ['TENANT_POOLS_PROXY_SAFE', 'yes'],
      ['TENANT_POOLS_KEEP_FULL_CONNECTION', '1'],
    ])('names %s when its value %p is malformed', (name, value) => {
      expect(() => optionsFromEnv({ [name]: value })).toThrow(new RegExp(name))
    })
  })
})
