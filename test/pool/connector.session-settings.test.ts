import { ConnectError } from '../../lib'
import {
  createTenants,
  databaseUrl,
  endTestPools,
  eventually,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'

const CLIENT_SET = `SELECT name, setting FROM pg_settings WHERE source = 'client' ORDER BY name`

/** The test server's URL with startup options of the caller's own, as a DATABASE_URL may carry. */
const withOwnOptions = (options: string): string => {
  const url = new URL(databaseUrl())
  url.searchParams.set('options', options)
  return url.toString()
}

describe('Behaviour: server-side session settings', () => {
  afterEach(endTestPools)

  it('sends idle_session_timeout, statement_timeout and search_path in the startup options', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools({ idleSessionTimeoutMs: 7_000, statementTimeoutMs: 9_000 })

    const { rows } = await pools.query<{ name: string; setting: string }>(tenant, CLIENT_SET)

    expect(Object.fromEntries(rows.map((r) => [r.name, r.setting]))).toMatchObject({
      idle_session_timeout: '7000',
      statement_timeout: '9000',
      search_path: `"tenant_${tenant}", pg_temp`,
    })
  })

  it.each([
    ['a tab', '\t'],
    ['a newline', '\n'],
    ['a carriage return', '\r'],
    ['a vertical tab', '\v'],
    ['a form feed', '\f'],
    ['a backslash', '\\'],
  ])(
    'keeps a schema name with %s and "-c" in it one argument: the server sees exactly that name',
    async (_, odd) => {
      // A schemaFor of the application's that returns something hostile: it must not smuggle a
      // setting of its own into the startup packet (statement_timeout=1 would fail every statement).
      const schemaFor = (id: string) => `x${odd}-c${odd}statement_timeout=1${odd}\\${odd}${id}`
      const { pools } = testPools({ schemaFor, statementTimeoutMs: 9_000 })

      const { rows } = await pools.query<{ name: string; setting: string }>('acme', CLIENT_SET)

      expect(Object.fromEntries(rows.map((r) => [r.name, r.setting]))).toMatchObject({
        statement_timeout: '9000',
        search_path: `"${schemaFor('acme')}", pg_temp`,
      })
    },
  )

  it('lets the server end a session idle past idle_session_timeout; the next call still succeeds', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools({ idleSessionTimeoutMs: 200, validateAfterIdleMs: 0 })
    await pools.query(tenant, 'SELECT 1')

    expect(await eventually(() => pools.stats().counters.serverKills === 1)).toBe(true)

    await expect(pools.query(tenant, 'SELECT 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] })
  })

  it('ends a statement past statement_timeout with 57014', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools({ statementTimeoutMs: 100 })

    await expect(pools.query(tenant, 'SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' })
  })

  it("keeps the connection string's own startup options, with ours winning where both set one", async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools({
      connectionString: withOwnOptions('-c work_mem=1234kB -c search_path=public -c statement_timeout=1000'),
      statementTimeoutMs: 9_000,
    })

    const { rows } = await pools.query<{ tenant: string; work_mem: string; timeout: string }>(
      tenant,
      `SELECT tenant, current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS timeout FROM whoami`,
    )

    expect(rows).toEqual([{ tenant, work_mem: '1234kB', timeout: '9s' }])
  })

  describe('proxy-safe mode', () => {
    it("sends none of its own startup options, but the connection string's", async () => {
      const tenant = uniqueTenant('px')
      await createTenants([tenant])
      const { pools } = testPools({
        proxySafe: true,
        connectionString: withOwnOptions(`-c search_path=tenant_${tenant} -c work_mem=1234kB`),
      })

      const { rows } = await pools.query(
        tenant,
        `SELECT tenant, current_setting('work_mem') AS work_mem FROM whoami`,
      )

      expect(rows).toEqual([{ tenant, work_mem: '1234kB' }])
      const set = await pools.query<{ name: string }>(tenant, CLIENT_SET)
      expect(set.rows.map((r) => r.name)).toEqual([
        'application_name',
        'client_encoding',
        'search_path',
        'work_mem',
      ])
    })

    it('sends no startup options and no SET: the session settings come from the role', async () => {
      // Prepare: a tenant role that carries its own settings, as it must behind RDS Proxy
      const tenant = uniqueTenant('px')
      const role = `role_${tenant}`
      await createTenants([tenant])
      await withAdmin(async (admin) => {
        await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'role-pw'`)
        await admin.query(`ALTER ROLE ${role} SET search_path = tenant_${tenant}`)
        await admin.query(`ALTER ROLE ${role} SET idle_session_timeout = '45s'`)
        await admin.query(`GRANT USAGE ON SCHEMA tenant_${tenant} TO ${role}`)
        await admin.query(`GRANT SELECT ON tenant_${tenant}.whoami TO ${role}`)
      })
      const { pools } = testPools({
        proxySafe: true,
        credentials: async () => ({ user: role, password: 'role-pw' }),
      })

      // Act
      const set = await pools.query<{ name: string }>(tenant, CLIENT_SET)
      const who = await pools.query<{ tenant: string; timeout: string }>(
        tenant,
        `SELECT tenant, current_setting('idle_session_timeout') AS timeout FROM whoami`,
      )

      // Assess: only what pg itself always sends at startup came from the client
      expect(set.rows.map((r) => r.name)).toEqual(['application_name', 'client_encoding'])
      expect(who.rows).toEqual([{ tenant, timeout: '45s' }])
    })

    it('refuses a connection whose role does not select the tenant schema', async () => {
      const tenant = uniqueTenant('px')
      await createTenants([tenant])
      const { pools } = testPools({ proxySafe: true })

      await expect(pools.query(tenant, 'SELECT 1')).rejects.toBeInstanceOf(ConnectError)
      await expect(pools.query(tenant, 'SELECT 1')).rejects.toThrow(
        `Proxy-safe mode: the role's search_path does not select schema tenant_${tenant} for pool ${tenant}. ` +
          'Run ALTER ROLE <role> SET search_path = <schema> for the role this pool logs in as.',
      )
      expect(pools.stats().totals.total).toBe(0)
    })

    it("never hands one scope's connection to another scope logging in as the same role", async () => {
      // One role for every tenant, whose search_path selects a's schema: right for a, wrong for b.
      const [a, b] = [uniqueTenant('pa'), uniqueTenant('pb')]
      const role = `role_${a}`
      await createTenants([a, b])
      await withAdmin(async (admin) => {
        await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'role-pw'`)
        await admin.query(`ALTER ROLE ${role} SET search_path = tenant_${a}`)
        for (const id of [a, b]) {
          await admin.query(`GRANT USAGE ON SCHEMA tenant_${id} TO ${role}`)
          await admin.query(`GRANT SELECT ON tenant_${id}.whoami TO ${role}`)
        }
      })
      const { pools } = testPools({
        proxySafe: true,
        credentials: async () => ({ user: role, password: 'role-pw' }),
      })
      expect((await pools.query(a, 'SELECT tenant FROM whoami')).rows).toEqual([{ tenant: a }])
      // a's connection is idle; b must not get it (its session would read a's schema).
      await expect(pools.query(b, 'SELECT tenant FROM whoami')).rejects.toBeInstanceOf(ConnectError)
      expect(pools.stats().logins.map((l) => l.key.split('|')[1])).toEqual([`scope:${a}`, `scope:${b}`])
    })
  })
})
