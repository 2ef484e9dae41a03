import { createTenants, endTestPools, testPools, uniqueTenant } from '../support/db'

const pid = 'SELECT pg_backend_pid() AS pid'
type Pid = { pid: number }

describe('Behaviour: what comes back to the pool', () => {
  afterEach(endTestPools)

  async function setup() {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools({ maxPerPool: 1 })
    const first = (await pools.query<Pid>(tenant, pid)).rows[0]?.pid
    return { pools, tenant, first }
  }

  it('destroys a client released with an error', async () => {
    const { pools, tenant, first } = await setup()

    await expect(
      pools.withClient(tenant, async () => {
        throw new Error('handler failed')
      }),
    ).rejects.toThrow('handler failed')

    const next = (await pools.query<Pid>(tenant, pid)).rows[0]?.pid
    expect(next).not.toBe(first)
    expect(pools.stats().counters.connectionsClosed).toBe(1)
  })

  it('destroys a client out of a failed transaction and rolls the work back', async () => {
    const { pools, tenant, first } = await setup()

    await expect(
      pools.transaction(tenant, async (client) => {
        await client.query(`INSERT INTO whoami VALUES ('ghost')`)
        await client.query('SELECT 1/0')
      }),
    ).rejects.toMatchObject({ code: '22012' })

    const { rows } = await pools.query<{ tenant: string } & Pid>(
      tenant,
      `SELECT tenant, pg_backend_pid() AS pid FROM whoami`,
    )
    expect(rows.map((r) => r.tenant)).toEqual([tenant])
    expect(rows[0]?.pid).not.toBe(first)
  })

  it('destroys a client handed back inside an open transaction', async () => {
    const { pools, tenant, first } = await setup()

    await pools.withClient(tenant, async (client) => {
      await client.query('BEGIN')
      await client.query(`INSERT INTO whoami VALUES ('uncommitted')`)
    })

    const { rows } = await pools.query<{ tenant: string } & Pid>(
      tenant,
      `SELECT tenant, pg_backend_pid() AS pid FROM whoami`,
    )
    expect(rows.map((r) => r.tenant)).toEqual([tenant])
    expect(rows[0]?.pid).not.toBe(first)
  })

  it('commits a successful transaction and keeps its connection', async () => {
    const { pools, tenant, first } = await setup()

    const value = await pools.transaction(tenant, async (client) => {
      await client.query(`INSERT INTO whoami VALUES ('second')`)
      return 'done'
    })

    expect(value).toBe('done')
    const { rows } = await pools.query<{ n: string } & Pid>(
      tenant,
      'SELECT count(*) AS n, pg_backend_pid() AS pid FROM whoami',
    )
    expect(rows[0]).toEqual({ n: '2', pid: first })
  })

  it('keeps the connection after a failed single statement, which leaves the session clean', async () => {
    const { pools, tenant, first } = await setup()

    await expect(pools.query(tenant, 'SELECT * FROM no_such_table')).rejects.toMatchObject({ code: '42P01' })

    expect((await pools.query<Pid>(tenant, pid)).rows[0]?.pid).toBe(first)
  })
})

// Found in review, with the event sequence that used to break it.
describe('Behaviour: edge cases of the pool', () => {
  afterEach(endTestPools)

  it('does not hand the next caller a connection the server ended with a FATAL of another SQLSTATE', async () => {
    // Prepare: one connection; transaction_timeout ends the session with FATAL 25P04
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools({ maxPerPool: 1 })

    // Act: the second call queues behind the first and gets its connection when it fails
    const [first, second] = await Promise.allSettled([
      pools.query(tenant, `SET transaction_timeout = '100ms'; SELECT pg_sleep(1)`),
      pools.query<{ ok: number }>(tenant, 'SELECT 1 AS ok'),
    ])

    // Assess
    expect(first).toMatchObject({ status: 'rejected', reason: { code: '25P04', severity: 'FATAL' } })
    expect(second).toMatchObject({ status: 'fulfilled', value: { rows: [{ ok: 1 }] } })
  })
})
