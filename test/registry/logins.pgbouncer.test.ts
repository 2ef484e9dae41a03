// Proxy-safe mode behind a real transaction pooler: PgBouncer in transaction mode refuses startup
// parameters it does not know (`options`) and shares server sessions between clients, as RDS Proxy
// does. Tenants log in as their own roles, whose settings carry the schema. Skipped, loudly, where
// PgBouncer is not installed (.ci/run installs it).
import { Client } from 'pg'
import { TenantPools } from '../../lib'
import { type ControlledServer, controlledServer } from '../support/controlled-pg'
import { memoryLog } from '../support/memory-log'
import { type PgBouncer, pgbouncerBinary, startPgBouncer } from '../support/pgbouncer.mjs'
import { describeUnless } from '../support/skips'

const describeProxy = describeUnless(
  pgbouncerBinary() === undefined
    ? 'PgBouncer is not installed: apt-get install -y pgbouncer (.ci/run does, as root)'
    : undefined,
)

describeProxy('Proxy-safe mode behind PgBouncer (transaction mode)', () => {
  let server: ControlledServer
  let bouncer: PgBouncer
  // The secrets store: what the credentials provider returns per tenant, and what rotation changes.
  const passwords = new Map([
    ['a', 'pw-a-1'],
    ['b', 'pw-b-1'],
  ])
  const users = () => [...passwords].map(([t, password]) => ({ name: `tenant_${t}`, password }))
  const admin = async (sql: string) => {
    const c = new Client({ connectionString: server.url })
    await c.connect()
    try {
      await c.query(sql)
    } finally {
      await c.end()
    }
  }

  beforeAll(async () => {
    server = await controlledServer(['log_statement=all', 'log_line_prefix=%a|%u| '])
    for (const [t, password] of passwords) {
      await admin(`CREATE SCHEMA tenant_${t}`)
      await admin(`CREATE TABLE tenant_${t}.notes (body text)`)
      await admin(`INSERT INTO tenant_${t}.notes VALUES ('secret of ${t}')`)
      await admin(`CREATE ROLE tenant_${t} LOGIN PASSWORD '${password}'`)
      await admin(`GRANT USAGE ON SCHEMA tenant_${t} TO tenant_${t}`)
      await admin(`GRANT SELECT, INSERT ON tenant_${t}.notes TO tenant_${t}`)
      await admin(`ALTER ROLE tenant_${t} SET search_path = tenant_${t}`)
    }
    bouncer = await startPgBouncer({ targetPort: Number(new URL(server.url).port), users: users() })
  }, 60_000)
  afterAll(async () => {
    await bouncer?.stop()
    await server?.quit()
  })

  const poolsVia = (extra: object = {}) =>
    new TenantPools({
      host: '127.0.0.1',
      port: bouncer.port,
      database: new URL(server.url).pathname.slice(1),
      proxySafe: true,
      applicationNamePrefix: 'bouncer',
      logger: memoryLog().log,
      credentials: async ({ tenantId }) => ({
        user: `tenant_${tenantId}`,
        password: passwords.get(tenantId as string) as string,
      }),
      ...extra,
    })

  it('refuses startup options itself: the reason proxy-safe mode sends none', async () => {
    const pools = new TenantPools({
      host: '127.0.0.1',
      port: bouncer.port,
      database: new URL(server.url).pathname.slice(1),
      logger: memoryLog().log,
      credentials: async () => ({ user: 'tenant_a', password: passwords.get('a') as string }),
    })
    await expect(pools.query('a', 'SELECT 1')).rejects.toMatchObject({ code: 'CONNECT_FAILED' })
    await pools.end()
  })

  it('confines each tenant to its schema, interleaved over shared server sessions, with no SET', async () => {
    const pools = poolsVia()
    const from = server.lines.length
    const calls = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? 'b' : 'a'))
    const answers = await Promise.all(
      calls.map(
        async (t) => (await pools.query<{ body: string }>(t, 'SELECT body FROM notes')).rows[0]?.body,
      ),
    )
    expect(answers).toEqual(calls.map((t) => `secret of ${t}`))
    await pools.transaction('a', (c) => c.query(`INSERT INTO notes VALUES ('more')`))
    const theirs = await pools
      .query('a', 'SELECT * FROM tenant_b.notes')
      .catch((e: { code: string }) => e.code)
    expect(theirs).toBe('42501')
    await pools.end()
    const statements = server.lines.slice(from).filter((l) => l.includes('statement: '))
    expect(statements.length).toBeGreaterThan(40)
    // PgBouncer passes a client's application_name on by a SET of its own (`…';`, on its server
    // connections); any other SET would be ours.
    const ours = statements.filter((l) => !/statement: SET application_name='[^']*';$/.test(l))
    expect(ours.length).toBeGreaterThan(40)
    expect(ours.filter((l) => /statement: .*\bSET\b/i.test(l))).toEqual([])
  })

  it('logs in again after a rotation: the refused login refreshes the credentials once', async () => {
    const pools = poolsVia()
    expect((await pools.query<{ body: string }>('a', 'SELECT body FROM notes LIMIT 1')).rows).toHaveLength(1)
    // Rotation: the role's password, PgBouncer's auth file, then the secret. This environment's
    // provider still returns the old one until asked to refresh.
    const stale = passwords.get('a') as string
    await admin(`ALTER ROLE tenant_a PASSWORD 'pw-a-2'`)
    bouncer.setUsers(users().map((u) => (u.name === 'tenant_a' ? { ...u, password: 'pw-a-2' } : u)))
    let refreshed = 0
    const rotating = poolsVia({
      credentials: async ({ tenantId, forceRefresh }: { tenantId: string; forceRefresh: boolean }) => {
        if (forceRefresh) refreshed++
        return { user: `tenant_${tenantId}`, password: forceRefresh ? 'pw-a-2' : stale }
      },
    })
    // PgBouncer reloads its auth file on SIGHUP, asynchronously: wait for the old password to fail.
    let tries = 0
    for (let i = 0; i < 100; i++) {
      tries++
      const c = new Client({
        host: '127.0.0.1',
        port: bouncer.port,
        user: 'tenant_a',
        password: stale,
        database: 'chaos',
      })
      const ok = await c.connect().then(
        () => true,
        () => false,
      )
      await c.end().catch(() => {})
      if (!ok) break
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(tries).toBeLessThan(100)
    const { rows } = await rotating.query<{ body: string }>('a', 'SELECT body FROM notes LIMIT 1')
    expect(rows).toHaveLength(1)
    expect(refreshed).toBe(1)
    expect(rotating.stats().counters.credentialRefreshes).toBe(1)
    passwords.set('a', 'pw-a-2')
    await rotating.end()
    await pools.end()
  })
})
