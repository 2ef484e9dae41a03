// One budget per call: the wait for a connection, its validation and the statement all end by the
// call's deadline, with typed errors that say whether anything may have run.
import { DeadlineExceededError, StatementTimeoutError, type TenantPoolsOptions } from '../../lib'
import {
  createTenants,
  endTestPools,
  holdConnection,
  resumeBackend,
  stopBackend,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'

afterEach(endTestPools)

// A tenant of the test's own and a registry on the shared server.
async function prepare(options: TenantPoolsOptions = {}) {
  const tenant = uniqueTenant()
  await createTenants([tenant])
  return { tenant, pools: testPools(options).pools }
}

describe('Deadlines', () => {
  it('ends a wait for a connection at the deadline, long before the connect timeout', async () => {
    // Prepare: the only connection of the budget is held
    const { tenant, pools } = await prepare({ budget: 1, maxPerPool: 1, connectTimeoutMs: 20_000 })
    const held = await holdConnection(pools, tenant)

    // Act
    const started = Date.now()
    const err = await pools
      .query(tenant, 'SELECT 1', [], { deadline: Date.now() + 200 })
      .catch((e: unknown) => e)

    // Assess: the deadline, not the 20 s connect timeout, ended it; nothing was sent
    expect(err).toBeInstanceOf(DeadlineExceededError)
    expect((err as DeadlineExceededError).mayHaveRun).toBe(false)
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(pools.stats().counters.deadlinesExceeded).toBe(1)
    expect(pools.stats().totals.waiting).toBe(0)
    held.release()
    await held.done
  })

  it('refuses a call whose deadline has passed without taking a connection', async () => {
    const { tenant, pools } = await prepare()
    await expect(pools.query(tenant, 'SELECT 1', [], { deadline: Date.now() - 1 })).rejects.toBeInstanceOf(
      DeadlineExceededError,
    )
    const aborted = new AbortController()
    aborted.abort()
    await expect(pools.query(tenant, 'SELECT 1', [], { signal: aborted.signal })).rejects.toBeInstanceOf(
      DeadlineExceededError,
    )
    expect(pools.stats().counters.checkouts).toBe(0)
    expect(pools.stats().counters.connectionsOpened).toBe(0)
  })

  it('ends a wait for a connection when the signal is aborted', async () => {
    const { tenant, pools } = await prepare({ budget: 1, maxPerPool: 1, connectTimeoutMs: 20_000 })
    const held = await holdConnection(pools, tenant)
    const controller = new AbortController()
    const pending = pools.query(tenant, 'SELECT 1', [], { signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    await expect(pending).rejects.toBeInstanceOf(DeadlineExceededError)
    expect(pools.stats().totals.waiting).toBe(0)
    held.release()
    await held.done
  })

  it('gives up on an unanswered statement at the deadline, destroys its connection and says it may have run', async () => {
    const { tenant, pools } = await prepare()
    await pools.query(tenant, 'SELECT 1')
    const before = pools.stats().counters

    const err = await pools
      .query(tenant, 'SELECT pg_sleep(5)', [], { deadline: Date.now() + 300 })
      .catch((e: unknown) => e)

    expect(err).toBeInstanceOf(StatementTimeoutError)
    expect((err as StatementTimeoutError).mayHaveRun).toBe(true)
    const after = pools.stats().counters
    expect(after.statementTimeouts - before.statementTimeouts).toBe(1)
    expect(after.connectionsClosed - before.connectionsClosed).toBe(1)
    expect(pools.stats().totals.active).toBe(0)
    // The registry serves the next call on a fresh connection.
    await expect(pools.query(tenant, 'SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] })
  })

  it('bounds a statement by statementTimeoutMs plus the margin even without a deadline', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    // One connection, whose backend is stopped (SIGSTOP) as a server that cannot cancel would
    // behave: its statement_timeout never fires, and only the client-side bound ends the statement.
    const { pools } = testPools({ maxPerPool: 1, statementTimeoutMs: 200, statementTimeoutMarginMs: 100 })
    const { rows } = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')
    const pid = rows[0]?.pid as number
    stopBackend(pid)
    const started = Date.now()
    const err = await pools
      .query(tenant, 'SELECT 1')
      .catch((e: unknown) => e)
      .finally(() => resumeBackend(pid))
    expect(err).toBeInstanceOf(StatementTimeoutError)
    expect(Date.now() - started).toBeLessThan(4_000)
    expect(pools.stats().counters.statementTimeouts).toBe(1)
  })

  it('reports a transaction that ran out of time before COMMIT as not done, and nothing was written', async () => {
    const { tenant, pools } = await prepare()
    const err = await pools
      .transaction(
        tenant,
        async (c) => {
          await c.query('INSERT INTO whoami VALUES ($1)', ['from the timed-out transaction'])
          await c.query('SELECT pg_sleep(5)')
        },
        { deadline: Date.now() + 300 },
      )
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StatementTimeoutError)
    expect((err as StatementTimeoutError).mayHaveRun).toBe(false)
    // The server rolls the transaction back when the destroyed connection's session ends.
    const rows = await withAdmin(async (admin) => {
      for (let i = 0; i < 100; i++) {
        const { rowCount } = await admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5)%' AND state = 'active'`,
        )
        if (!rowCount) break
        await admin.query('SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE $1', [
          'SELECT pg_sleep(5)%',
        ])
        await new Promise((r) => setTimeout(r, 50))
      }
      return (await admin.query(`SELECT tenant FROM tenant_${tenant}.whoami`)).rows
    })
    expect(rows).toEqual([{ tenant }])
  })
})
