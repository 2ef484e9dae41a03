// How a call fails (calls.ts, checkout.ts): past its deadline or aborted before it got a connection;
// unanswered within its bound; a callback that throws nothing, loses its connection or cannot roll
// back; and a lent connection given back with a caller's SET in its session.
import { ConnectionLostError, DeadlineExceededError, StatementTimeoutError } from '../../lib'
import { createTenants, endTestPools, eventually, testPools, uniqueTenant, withAdmin } from '../support/db'

afterEach(endTestPools)

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the call to fail')
    },
    (e: unknown) => e,
  )

describe('Registry: a call that fails', () => {
  it.each([
    ['a configured login', {}],
    ['a credentials provider', { credentials: async () => ({ user: 'postgres', password: 'postgres' }) }],
  ])(
    'with %s, refuses a deadline that has come (to the millisecond), before opening anything',
    async (_, options) => {
      const now = 1_000_000
      const { pools } = testPools({ ...options, clock: { now: () => now } })
      const err = await failure(pools.query(uniqueTenant('dl'), 'SELECT 1', [], { deadline: now }))
      expect(err).toBeInstanceOf(DeadlineExceededError)
      expect((err as Error).message).toBe("The call's deadline passed before it got a connection")
      expect(pools.stats().counters).toMatchObject({ deadlinesExceeded: 1, connectionsOpened: 0 })
    },
  )

  it('refuses an aborted call before opening anything', async () => {
    const { pools } = testPools()
    const err = await failure(
      pools.query(uniqueTenant('ab'), 'SELECT 1', [], { signal: AbortSignal.abort() }),
    )
    expect(err).toBeInstanceOf(DeadlineExceededError)
    expect((err as Error).message).toBe('The call was aborted before it got a connection')
    expect(pools.stats().counters).toMatchObject({ deadlinesExceeded: 1, connectionsOpened: 0 })
  })

  it('gives up on a statement unanswered by its deadline, says it may have run, and destroys its connection', async () => {
    const a = uniqueTenant('st')
    await createTenants([a])
    const { pools, logs } = testPools()
    const err = await failure(pools.query(a, 'SELECT pg_sleep(3)', [], { deadline: Date.now() + 300 }))
    expect(err).toBeInstanceOf(StatementTimeoutError)
    expect((err as Error).message).toMatch(
      new RegExp(`^No answer to a statement of pool ${a} within \\d+ ms; it may have run$`),
    )
    expect((err as StatementTimeoutError).mayHaveRun).toBe(true)
    expect(pools.stats().counters.statementTimeouts).toBe(1)
    expect(logs.filter((l) => l.level === 'warn')).toEqual([
      {
        level: 'warn',
        message: 'statement unanswered: connection destroyed',
        extra: [{ poolKey: a, mayHaveRun: true }],
      },
    ])
  })

  it('puts no bound of its own on statements when statementTimeoutMs is 0', async () => {
    const a = uniqueTenant('nb')
    await createTenants([a])
    const { pools } = testPools({ statementTimeoutMs: 0, statementTimeoutMarginMs: 50 })
    await expect(pools.query(a, 'SELECT pg_sleep(0.3) AS slept')).resolves.toMatchObject({ rowCount: 1 })
    expect(pools.stats().counters.statementTimeouts).toBe(0)
  })

  it('gives up on a withClient callback at the deadline: it may have run', async () => {
    const a = uniqueTenant('wc')
    await createTenants([a])
    const { pools, logs } = testPools()
    const err = await failure(
      pools.withClient(a, (c) => c.query('SELECT pg_sleep(3)'), { deadline: Date.now() + 300 }),
    )
    expect(err).toBeInstanceOf(StatementTimeoutError)
    expect((err as Error).message).toBe(
      `The callback for pool ${a} did not finish before the call's deadline`,
    )
    expect((err as StatementTimeoutError).mayHaveRun).toBe(true)
    expect(pools.stats().counters.statementTimeouts).toBe(1)
    expect(logs.map((l) => l.message)).toEqual(['statement unanswered: connection destroyed'])
  })

  it('says a transaction whose COMMIT was sent and went unanswered may have committed', async () => {
    const a = uniqueTenant('cm')
    await createTenants([a])
    // A deferred constraint trigger that sleeps: the COMMIT itself takes a second.
    await withAdmin(async (admin) => {
      await admin.query(`CREATE FUNCTION tenant_${a}.slow() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN PERFORM pg_sleep(1); RETURN NULL; END $$`)
      await admin.query(`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON tenant_${a}.whoami
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION tenant_${a}.slow()`)
    })
    const { pools } = testPools()
    const err = await failure(
      pools.transaction(a, (c) => c.query('INSERT INTO whoami VALUES ($1)', ['late']), {
        deadline: Date.now() + 400,
      }),
    )
    expect(err).toBeInstanceOf(StatementTimeoutError)
    expect((err as StatementTimeoutError).mayHaveRun).toBe(true)
  })

  it('destroys the connection of a callback that throws nothing at all', async () => {
    const a = uniqueTenant('nu')
    await createTenants([a])
    const { pools } = testPools()
    await expect(
      pools.withClient(a, async () => {
        throw undefined
      }),
    ).rejects.toBeUndefined()
    expect(await eventually(() => pools.stats().counters.connectionsClosed === 1)).toBe(true)
    expect(pools.stats().totals.total).toBe(0)
  })

  it('reports a connection lost inside a callback as such, and a ROLLBACK that could not run', async () => {
    const a = uniqueTenant('lo')
    await createTenants([a])
    const { pools, logs } = testPools()
    const err = await failure(
      pools.transaction(a, async (c) => {
        await c.query('SELECT pg_terminate_backend(pg_backend_pid())').catch(() => undefined)
        await c.query('SELECT 1')
      }),
    )
    expect(err).toBeInstanceOf(ConnectionLostError)
    expect((err as Error).message).toBe('The connection to the database was lost during the call')
    expect((err as Error).cause).toBeInstanceOf(Error)
    expect((err as Error).cause).not.toBeInstanceOf(ConnectionLostError)
    const rollback = logs.filter((l) => l.message === 'ROLLBACK failed')
    expect(rollback).toHaveLength(1)
    expect(rollback[0]?.extra[0]).toMatchObject({ poolKey: a })
  })

  it('passes on a failure without SQLSTATE from a live connection as it is, not as a lost connection', async () => {
    const a = uniqueTenant('cv')
    await createTenants([a])
    const { pools } = testPools()
    const circular: Record<string, unknown> = {}
    circular.self = circular
    const err = await failure(pools.query(a, 'SELECT $1::jsonb AS v', [circular]))
    expect(err).toBeInstanceOf(TypeError)
    expect(err).not.toBeInstanceOf(ConnectionLostError)
    expect((await pools.query(a, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
  })

  it('passes on a failure with a SQLSTATE as it is, even once its connection is lost', async () => {
    const a = uniqueTenant('cs')
    await createTenants([a])
    const { pools } = testPools()
    const err = await failure(
      pools.withClient(a, async (c) => {
        const ended = new Promise((resolve) => c.once('end', resolve))
        const killed = await failure(c.query('SELECT pg_terminate_backend(pg_backend_pid())'))
        // Rethrown only once the socket has closed, when the registry knows the connection is lost.
        await ended
        throw killed
      }),
    )
    expect(err).not.toBeInstanceOf(ConnectionLostError)
    expect(err).toMatchObject({ code: '57P01' })
    expect(pools.stats().totals.total).toBe(0)
  })

  it('resets what a caller left in a lent connection’s session before anyone uses it again', async () => {
    const a = uniqueTenant('ls')
    await createTenants([a])
    const { pools } = testPools({ maxPerPool: 1 })
    const pg = pools.forTenant(a).asPgPool()
    const client = await pg.connect()
    await client.query("SET statement_timeout = '1234ms'")
    client.release()
    const { rows } = await pools.query<{ statement_timeout: string }>(a, 'SHOW statement_timeout')
    expect(rows[0]?.statement_timeout).not.toBe('1234ms')
    expect(pools.stats().counters).toMatchObject({ connectionsOpened: 1, sessionsReset: 1 })
  })
})
