import {
  applicationNameFor,
  baseConfig,
  type FactorySettings,
  startupOptions,
} from '../../lib/pool/connector'

const settings = (over: Partial<FactorySettings> = {}): FactorySettings => ({
  base: {},
  credentials: async () => ({ user: 'u', password: 'p' }),
  applicationNamePrefix: 'tp',
  connectTimeoutMs: 3000,
  statementTimeoutMs: 25_000,
  idleSessionTimeoutMs: 30_000,
  proxySafe: false,
  ...over,
})

describe('Module: client-factory', () => {
  describe('Function: startupOptions', () => {
    it('quotes the schema and sends the timeouts', () => {
      expect(startupOptions('tenant_acme', settings())).toBe(
        '-c search_path="tenant_acme",\\ pg_temp -c idle_session_timeout=30000 -c statement_timeout=25000',
      )
    })

    it('escapes spaces and backslashes, so a schema name stays one argument', () => {
      expect(startupOptions('a b\\c', settings({ idleSessionTimeoutMs: 0, statementTimeoutMs: 0 }))).toBe(
        '-c search_path="a\\ b\\\\c",\\ pg_temp',
      )
    })

    it('escapes every character the server splits arguments on, and backslashes', () => {
      const o = startupOptions(
        'a\tb\nc\vd\fe\rf g\\h',
        settings({ idleSessionTimeoutMs: 0, statementTimeoutMs: 0 }),
      )
      expect(o).toBe('-c search_path="a\\\tb\\\nc\\\vd\\\fe\\\rf\\ g\\\\h",\\ pg_temp')
    })

    it('leaves out a timeout set to 0', () => {
      expect(startupOptions('s', settings({ idleSessionTimeoutMs: 0 }))).not.toMatch(/idle_session_timeout/)
    })

    it('sends nothing in proxy-safe mode', () => {
      expect(startupOptions('tenant_acme', settings({ proxySafe: true }))).toBeUndefined()
    })
  })

  describe('Function: baseConfig', () => {
    it('takes user and password out of the connection string, so credentials providers win', () => {
      const { base, user, password } = baseConfig({
        connectionString: 'postgres://app:pw@db.example:6543/main',
      })
      expect(base).toMatchObject({ host: 'db.example', port: 6543, database: 'main', keepAlive: true })
      expect(base).not.toHaveProperty('user')
      expect(base).not.toHaveProperty('password')
      expect({ user, password }).toEqual({ user: 'app', password: 'pw' })
    })

    it('lets explicit options override the connection string', () => {
      const { base, user } = baseConfig({
        connectionString: 'postgres://app@db/main',
        host: 'other',
        user: 'me',
      })
      expect(base.host).toBe('other')
      expect(user).toBe('me')
    })
  })

  describe('Function: applicationNameFor', () => {
    it('is prefix:key when it fits in 63 bytes', () => {
      expect(applicationNameFor('tenant-pools', 'acme:web')).toBe('tenant-pools:acme:web')
    })

    it('keeps a name of exactly 63 bytes whole, and hashes one of 64', () => {
      const fits = 'k'.repeat(63 - 'tenant-pools:'.length)
      expect(applicationNameFor('tenant-pools', fits)).toBe(`tenant-pools:${fits}`)
      const over = applicationNameFor('tenant-pools', `${fits}k`)
      expect(over).toHaveLength(63)
      expect(over).toMatch(/^tenant-pools:k+~[0-9a-f]{10}$/)
    })

    it('keeps two long keys with a common head apart, within 63 bytes', () => {
      const head = 'a'.repeat(48)
      const one = applicationNameFor('tenant-pools', `${head}:${'x'.repeat(32)}`)
      const two = applicationNameFor('tenant-pools', `${head}:${'x'.repeat(31)}y`)
      expect(one).toHaveLength(63)
      expect(two).toHaveLength(63)
      expect(one).not.toBe(two)
      expect(one.startsWith('tenant-pools:aaaa')).toBe(true)
    })
  })
})
