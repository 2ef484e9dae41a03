// A connection goes back to the pool only once the server has answered everything sent on it. pg
// settles a statement it gave up on (its own query_timeout) while the server still runs it, and a
// failed one at its ErrorResponse, before the ReadyForQuery that tells the transaction status.
import type { QueryConfig } from 'pg'
import { createTenants, endTestPools, testPools, uniqueTenant, withAdmin } from '../support/db'

afterEach(endTestPools)

describe('Behaviour: a connection is given back only once the server is ready', () => {
  it("lets no other tenant's statement run in, or commit, the transaction a timed-out statement left open", async () => {
    const [a, b] = [uniqueTenant('ra'), uniqueTenant('rb')]
    await createTenants([a, b])
    await withAdmin((admin) => admin.query(`CREATE TABLE tenant_${a}.t (x int)`))
    // One connection for both tenants: b's call can only have a's, after it.
    const { pools } = testPools({ budget: 1, maxPerPool: 1 })
    const handle = pools.forTenant(a).asPgPool()

    // pg gives up on it at 50 ms; the server goes on, and leaves a transaction open.
    const timedOut = await handle
      .query({
        text: 'BEGIN; INSERT INTO t VALUES (1); SELECT pg_sleep(0.3)',
        query_timeout: 50,
      } as QueryConfig)
      .then(
        () => 'answered',
        (err: Error) => err.message,
      )
    expect(timedOut).toMatch(/timeout/i)
    const { rows } = await pools.query<{ fresh: boolean; tx: string | null }>(
      b,
      'SELECT now() = statement_timestamp() AS fresh, txid_current_if_assigned()::text AS tx',
    )

    // b ran in a transaction of its own, and a's insert was never committed.
    expect(rows).toEqual([{ fresh: true, tx: null }])
    const left = await withAdmin((admin) => admin.query(`SELECT count(*)::int AS n FROM tenant_${a}.t`))
    expect(left.rows).toEqual([{ n: 0 }])
  })

  it('keeps a connection whose failed statement left no transaction, once the server said so', async () => {
    const a = uniqueTenant('rk')
    await createTenants([a])
    const { pools } = testPools({ budget: 1, maxPerPool: 1 })
    for (let i = 0; i < 20; i++) {
      await expect(pools.query(a, 'SELECT 1/0')).rejects.toMatchObject({ code: '22012' })
    }
    // Failed transactions are destroyed; a failed statement outside one is not.
    await expect(pools.query(a, 'BEGIN; SELECT 1/0')).rejects.toMatchObject({ code: '22012' })
    expect((await pools.query(a, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    await new Promise((r) => setTimeout(r, 50))
    expect(pools.stats().counters).toMatchObject({ connectionsOpened: 2, connectionsClosed: 1 })
  })
})
