// Proxy-safe mode, proven from the server's side: with log_statement=all, a tenant role's sessions
// (settings on the role, no startup options) show no SET of any kind, and cannot reach another
// tenant's schema.
import { Client } from 'pg'
import { TenantPools } from '../../lib'
import { type ControlledServer, controlledServer } from '../support/controlled-pg'
import { memoryLog } from '../support/memory-log'

describe('Proxy-safe mode at the server', () => {
  let server: ControlledServer
  beforeAll(async () => {
    server = await controlledServer(['log_statement=all', 'log_line_prefix=%a|%u| '])
  }, 60_000)
  afterAll(() => server.quit())

  it('issues no SET, and a tenant role reaches its own schema only', async () => {
    // Prepare: two tenants, each with a role that owns its settings
    const admin = new Client({ connectionString: server.url })
    await admin.connect()
    for (const t of ['a', 'b']) {
      await admin.query(`CREATE SCHEMA tenant_${t}`)
      await admin.query(`CREATE TABLE tenant_${t}.notes (body text)`)
      await admin.query(`INSERT INTO tenant_${t}.notes VALUES ('secret of ${t}')`)
      await admin.query(`CREATE ROLE tenant_${t} LOGIN PASSWORD 'pw-${t}'`)
      await admin.query(`GRANT USAGE ON SCHEMA tenant_${t} TO tenant_${t}`)
      await admin.query(`GRANT SELECT, INSERT ON tenant_${t}.notes TO tenant_${t}`)
      await admin.query(`ALTER ROLE tenant_${t} SET search_path = tenant_${t}`)
      await admin.query(`ALTER ROLE tenant_${t} SET statement_timeout = '20s'`)
      await admin.query(`ALTER ROLE tenant_${t} SET idle_session_timeout = '30s'`)
    }
    await admin.end()
    const url = new URL(server.url)
    const pools = new TenantPools({
      host: url.hostname,
      port: Number(url.port),
      database: url.pathname.slice(1),
      proxySafe: true,
      applicationNamePrefix: 'proxysafe',
      logger: memoryLog().log,
      credentials: async ({ tenantId }) => ({ user: `tenant_${tenantId}`, password: `pw-${tenantId}` }),
    })

    // Act: queries, a transaction, and an attempt on the other tenant's schema
    const mine = await pools.query<{ body: string; timeout: string }>(
      'a',
      `SELECT body, current_setting('statement_timeout') AS timeout FROM notes`,
    )
    await pools.transaction('a', (c) => c.query(`INSERT INTO notes VALUES ('more')`))
    const theirs = await pools
      .query('a', 'SELECT * FROM tenant_b.notes')
      .catch((e: { code: string }) => e.code)
    const write = await pools
      .query('a', `INSERT INTO tenant_b.notes VALUES ('x')`)
      .catch((e: { code: string }) => e.code)
    await pools.end()

    // Assess
    expect(mine.rows).toEqual([{ body: 'secret of a', timeout: '20s' }])
    expect([theirs, write]).toEqual(['42501', '42501'])
    const ours = server.lines.filter((l) => l.includes('proxysafe:a|tenant_a|') && l.includes('statement: '))
    expect(ours.some((l) => l.includes('SELECT body'))).toBe(true)
    expect(ours.some((l) => l.includes('statement: BEGIN'))).toBe(true)
    expect(ours.filter((l) => /statement:\s*(RESET|SET)\b|set_config/i.test(l))).toEqual([])
  }, 60_000)
})
