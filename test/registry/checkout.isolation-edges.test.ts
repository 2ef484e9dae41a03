// Edges of isolation found in review: what a statement's own text, settings or name, a holder's
// listeners, or a cancel arriving late could carry from one caller to the next.
import { Client, type QueryConfig } from 'pg'
import { sendCancelRequest } from '../../lib/adapters/cancel'
import { createTenants, endTestPools, testPools, uniqueTenant } from '../support/db'
import { pg15Label } from '../support/skips'

afterEach(endTestPools)

describe('Behaviour: a change of scope riding with a statement', () => {
  it("parses the statement under the settings the reset gives, not under the last tenant's", async () => {
    const [a, b] = [uniqueTenant('sa'), uniqueTenant('sb')]
    await createTenants([a, b])
    const { pools } = testPools({ budget: 1, maxPerPool: 1 })
    // Spelled so that the text check does not see it: only the reset can undo it.
    await pools.query(
      a,
      `DO $$BEGIN PERFORM "set_config"('standard_conforming_strings', 'off', false); END$$`,
    )
    // With standard_conforming_strings off, \' would end nothing: another statement, or an error.
    const { rows } = await pools.query<{ v: string }>(b, String.raw`SELECT 'a\' || 'b' AS v`)
    expect(rows).toEqual([{ v: String.raw`a\b` }])
  })
})

describe.each([
  ['PostgreSQL 18', process.env.DATABASE_URL],
  [pg15Label(), process.env.TEST_PG15_URL],
])('Behaviour: named statements on %s', (_, url) => {
  const run = url ? it : it.skip
  run(
    'a name reused with other text is refused by pg, and the connection answers the next query right',
    async () => {
      const { pools } = testPools({ connectionString: url, budget: 1, maxPerPool: 1 })
      const handle = pools.forTenant('named').asPgPool()
      const named = (text: string) => handle.query({ name: 'q', text } as QueryConfig)
      expect((await named('SELECT 1 AS v')).rows).toEqual([{ v: 1 }])
      await expect(named('SELECT 2 AS v')).rejects.toThrow(/Prepared statements must be unique/)
      // With values: an answer read one message out of step would be a SET's, not this.
      expect((await handle.query('SELECT $1::int AS v', [3])).rows).toEqual([{ v: 3 }])
      expect((await handle.query('SELECT 4 AS v')).rows).toEqual([{ v: 4 }])
      expect((await named('SELECT 1 AS v')).rows).toEqual([{ v: 1 }])
      // Nothing was written ahead of the refused statement: its connection was never out of step.
      expect(pools.stats().counters).toMatchObject({ connectionsOpened: 1, connectionsLost: 0 })
    },
  )
})

describe('Behaviour: what a holder attached to a lent client', () => {
  it('is gone before the next caller has the connection', async () => {
    const [a, b] = [uniqueTenant('la'), uniqueTenant('lb')]
    await createTenants([a, b])
    const { pools } = testPools({ budget: 1, maxPerPool: 1 })
    const heard: string[] = []
    await pools.withClient(a, async (client) => {
      client.on('notification', (n) => heard.push(`${a} heard ${n.payload}`))
      client.on('notice', (n) => heard.push(`${a} noticed ${n.message}`))
    })
    const counts = await pools.withClient(b, async (client) => {
      await client.query('LISTEN secrets')
      await client.query("NOTIFY secrets, 'of b'")
      await client.query("DO $$BEGIN RAISE NOTICE 'for b only'; END$$")
      return [client.listenerCount('notification'), client.listenerCount('notice')]
    })
    expect(counts).toEqual([0, 0])
    expect(heard).toEqual([])
  })
})

describe('Behaviour: the pg.Pool handle with a listener that throws', () => {
  it('still gives the connection back', async () => {
    const a = uniqueTenant('lt')
    await createTenants([a])
    const { pools } = testPools({ budget: 1, maxPerPool: 1 })
    const handle = pools.forTenant(a).asPgPool()
    handle.on('acquire', () => {
      throw new Error('listener broke')
    })
    await expect(handle.query('SELECT 1')).rejects.toThrow('listener broke')
    handle.removeAllListeners('acquire')
    handle.on('release', () => {
      throw new Error('listener broke again')
    })
    await expect(handle.query('SELECT 1')).rejects.toThrow('listener broke again')
    handle.removeAllListeners('release')
    // Both connections went back: the one-connection budget still serves.
    expect((await handle.query('SELECT 2 AS v')).rows).toEqual([{ v: 2 }])
    expect(pools.stats().totals).toMatchObject({ active: 0 })
  })
})

describe('Function: sendCancelRequest', () => {
  it('sends nothing once the holder has let the connection go, and cancels while it holds it', async () => {
    const client = new Client({ connectionString: process.env.DATABASE_URL })
    await client.connect()
    try {
      const slept = client.query('SELECT pg_sleep(0.3)').then(
        () => 'slept',
        (err: { code?: string }) => err.code,
      )
      await new Promise((r) => setTimeout(r, 50))
      expect(await sendCancelRequest(client as never, () => false)).toBe(false)
      expect(await slept).toBe('slept')
      const again = client.query('SELECT pg_sleep(5)').then(
        () => 'slept',
        (err: { code?: string }) => err.code,
      )
      await new Promise((r) => setTimeout(r, 50))
      expect(await sendCancelRequest(client as never, () => true)).toBe(true)
      expect(await again).toBe('57014')
    } finally {
      await client.end()
    }
  })
})

describe.each([
  ['PostgreSQL 18', process.env.DATABASE_URL],
  [pg15Label(), process.env.TEST_PG15_URL],
])('Behaviour: a procedure’s ROLLBACK after its caller moved the search_path, on %s', (_, url) => {
  const run = url ? it : it.skip
  // Found by the isolation property on PostgreSQL 15: a tenant sets its search_path to another's,
  // then CALLs (spelled past the text check, with values) a procedure that rolls back and writes.
  // The search_path asserted ahead of the CALL shared its transaction, the ROLLBACK undid it, and
  // the write landed in the other tenant's table.
  run('never lets the write land in another tenant’s schema', async () => {
    const [victim, attacker] = [uniqueTenant('rv'), uniqueTenant('ra')]
    const { pools } = testPools({ connectionString: url, budget: 1, maxPerPool: 1 })
    for (const id of [victim, attacker]) {
      await pools.master.query(`CREATE SCHEMA tenant_${id}`)
      await pools.query(id, 'CREATE TABLE whoami (tenant text)')
    }
    const schema = `tenant_${attacker}`
    await pools.query(
      attacker,
      `CREATE OR REPLACE PROCEDURE ${schema}.hop(n int) LANGUAGE plpgsql AS $p$
       BEGIN ROLLBACK; INSERT INTO whoami (tenant) VALUES ('${attacker}'); END $p$`,
    )
    await pools.query(attacker, `select /* x; */ "set_config"('search_path', $1, false)`, [
      `pg_temp, tenant_${victim}`,
    ])
    await pools.query(attacker, `/* /* nested */ */ CALL ${schema}.hop($1)`, [1])
    const { rows } = await pools.query<{ tenant: string }>(victim, 'SELECT tenant FROM whoami')
    expect(rows).toEqual([])
    const own = await pools.query<{ tenant: string }>(attacker, 'SELECT tenant FROM whoami')
    expect(own.rows).toEqual([{ tenant: attacker }])
  })
})
