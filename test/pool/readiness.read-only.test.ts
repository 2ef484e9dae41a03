// Readiness reads the read-only setting the server reports: a session a caller's function left
// read-only (no SET in the statement's text to see) is reset before the scope's next caller.
import { createTenants, endTestPools, testPools, uniqueTenant } from '../support/db'

afterEach(endTestPools)

describe('Readiness: the reported read-only setting', () => {
  it('resets a session a function left read-only before the next caller of the same scope', async () => {
    const tenant = uniqueTenant('ro')
    await createTenants([tenant])
    const { pools } = testPools({ budget: 1, maxPerPool: 1 })
    await pools.query(
      tenant,
      `CREATE FUNCTION lock_down() RETURNS int LANGUAGE plpgsql AS $$
       BEGIN PERFORM set_config('default_transaction_read_only', 'on', false); RETURN 1; END $$`,
    )
    await pools.query(tenant, 'SELECT lock_down()')
    await pools.query(tenant, "INSERT INTO whoami (tenant) VALUES ('after')")
    expect(pools.stats().counters.connectionsOpened).toBe(1)
  })
})
