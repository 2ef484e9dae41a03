// Proxy-safe mode keeps its scope's session between calls (no SET may assert the search_path, and a
// DISCARD ALL before every call would cost a round trip each), except where the server reports a
// search_path that is no longer the one the role gave: PostgreSQL 18 does, and that session is reset.
import { randomBytes } from 'node:crypto'
import { Client } from 'pg'
import { TenantPools } from '../../lib'
import { memoryLog } from '../support/memory-log'
import { pg15Label } from '../support/skips'

const servers: Array<[string, string | undefined, boolean]> = [
  ['PostgreSQL 18', process.env.DATABASE_URL, true],
  [pg15Label(), process.env.TEST_PG15_URL, false],
]

describe.each(servers)('Proxy-safe mode on %s', (_, url, reports) => {
  const run = url ? it : it.skip
  const tag = randomBytes(3).toString('hex')
  const [tenant, schema, role] = [`px${tag}`, `tenant_px${tag}`, `px_role_${tag}`]

  const admin = async <T>(fn: (c: Client) => Promise<T>): Promise<T> => {
    const c = new Client({ connectionString: url })
    await c.connect()
    try {
      return await fn(c)
    } finally {
      await c.end()
    }
  }

  beforeAll(async () => {
    if (!url) return
    await admin(async (c) => {
      await c.query(`CREATE SCHEMA ${schema}`)
      await c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-${tag}'`)
      await c.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`)
      await c.query(`ALTER ROLE ${role} SET search_path = ${schema}`)
    })
  })
  afterAll(async () => {
    if (!url) return
    await admin(async (c) => {
      await c.query(`DROP SCHEMA ${schema} CASCADE`)
      await c.query(`DROP ROLE ${role}`)
    })
  })

  run(
    reports
      ? 'resets a session whose reported search_path moved, and otherwise keeps it'
      : 'keeps the session between its own calls: no DISCARD ALL before each',
    async () => {
      const pools = new TenantPools({
        // Its user and password give way to the credentials provider's.
        connectionString: url,
        proxySafe: true,
        logger: memoryLog().log,
        credentials: async () => ({ user: role, password: `pw-${tag}` }),
      })
      try {
        const one = async (text: string) =>
          (await pools.query(tenant, text)).rows[0] as Record<string, string>
        // A setting the text check cannot see (a quoted function name): kept between the scope's own calls.
        await one(`DO $$BEGIN PERFORM "set_config"('x.marker', 'kept', false); END$$`)
        expect(await one("SELECT current_setting('x.marker', true) AS v")).toEqual({ v: 'kept' })
        expect(await one("SELECT current_setting('x.marker', true) AS v")).toEqual({ v: 'kept' })
        // The search_path moved where the text check cannot see it.
        await one(`DO $$BEGIN PERFORM "set_config"('search_path', 'public', false); END$$`)
        const after = await one("SELECT current_schema() AS s, current_setting('x.marker', true) AS v")
        // 18 reported it: DISCARD ALL put the role's back (and took the marker with it).
        expect(after).toEqual(reports ? { s: schema, v: '' } : { s: 'public', v: 'kept' })
        expect(pools.stats().counters).toMatchObject({ connectionsOpened: 1, sessionsReset: reports ? 1 : 0 })
      } finally {
        await pools.end()
      }
    },
  )
})
