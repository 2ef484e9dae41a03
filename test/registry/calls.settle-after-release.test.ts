// A call that fails settles only once its connection is back in the pool (or destroyed), as one that
// succeeds does. pg reports the error at the ErrorResponse; the ReadyForQuery may come in a later
// chunk, and until it does the connection is held: a caller that then looks at the stats, or a
// prewarm whose warm-up failed, would find it still taken.
import { ConnectionLostError, type TenantPoolsOptions } from '../../lib'
import { clusterBUrl, endTestPools, testPools } from '../support/db'
import { type LateReadyProxy, lateReadyProxy } from '../support/late-ready-proxy'

let proxy: LateReadyProxy

beforeEach(async () => {
  proxy = await lateReadyProxy(new URL(clusterBUrl()), 300)
})

afterEach(async () => {
  await endTestPools()
  await proxy.close()
})

// One connection, through the proxy (`options` on top).
const throughProxy = (options: TenantPoolsOptions = {}) =>
  testPools({
    connectionString: clusterBUrl(),
    host: '127.0.0.1',
    port: proxy.port,
    budget: 1,
    maxPerPool: 1,
    ...options,
  })

describe('Behaviour: a failed call settles after its connection is given back', () => {
  it('a failed statement: the connection is idle when the caller hears of it, and the next call reuses it', async () => {
    // Prepare
    const { pools } = throughProxy()
    const db = pools.forMaster()
    await db.query('SELECT 1')

    // Act
    await expect(db.query('SELECT 1/0')).rejects.toMatchObject({ code: '22012' })

    // Assess: the server's ReadyForQuery really came late, and the connection was back already
    expect(proxy.held).toBe(1)
    expect(pools.stats().totals).toMatchObject({ total: 1, idle: 1, active: 0 })
    expect((await db.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    expect(pools.counters()).toMatchObject({ connectionsOpened: 1, connectionsClosed: 0 })
  })

  it('a statement that failed inside a transaction: its connection is gone when the caller hears of it', async () => {
    // Prepare
    const { pools } = throughProxy()
    const db = pools.forMaster()
    await db.query('SELECT 1')

    // Act: the server reports the transaction failed only in the late ReadyForQuery
    await expect(db.query('BEGIN; SELECT 1/0')).rejects.toMatchObject({ code: '22012' })

    // Assess: not kept for the next call
    expect(proxy.held).toBe(1)
    expect(pools.stats().totals).toMatchObject({ idle: 0, active: 0 })
    const { rows } = await db.query<{ tx: string | null }>('SELECT txid_current_if_assigned()::text AS tx')
    expect(rows).toEqual([{ tx: null }])
    expect(pools.counters()).toMatchObject({ connectionsOpened: 2, connectionsClosed: 1 })
  })

  it('a prewarm whose warm-up failed: opened, and its connection idle when it resolves', async () => {
    // Prepare
    const { pools } = throughProxy()

    // Act
    const outcome = await pools.prewarm({ warmUp: (limits) => pools.forMaster(limits).query('SELECT 1/0') })

    // Assess
    expect(outcome).toMatchObject({
      outcome: 'opened',
      warmUpError: expect.objectContaining({ code: '22012' }),
    })
    expect(proxy.held).toBe(1)
    expect(pools.stats().totals).toMatchObject({ total: 1, idle: 1, active: 0 })
  })

  it('a callback that caught its failed statement: the connection is idle when withClient resolves', async () => {
    // Prepare
    const { pools } = throughProxy()
    const db = pools.forMaster()

    // Act
    const caught = await db.withClient((client) =>
      client.query('SELECT 1/0').then(
        () => 'answered',
        (err: { code?: string }) => err.code,
      ),
    )

    // Assess
    expect(caught).toBe('22012')
    expect(proxy.held).toBe(1)
    expect(pools.stats().totals).toMatchObject({ total: 1, idle: 1, active: 0 })
  })

  it('a server that never sends the ReadyForQuery: the caller still hears of the error, and the connection is destroyed', async () => {
    // Prepare: longer than the validation timeout
    await proxy.close()
    proxy = await lateReadyProxy(new URL(clusterBUrl()), 5_000)
    const { pools } = throughProxy({ validationTimeoutMs: 200 })
    const db = pools.forMaster()
    await db.query('SELECT 1')

    // Act
    const err = await db.query('SELECT 1/0').catch((e: unknown) => e)

    // Assess: the server's error, not a loss; the connection not kept
    expect(err).toMatchObject({ code: '22012' })
    expect(err).not.toBeInstanceOf(ConnectionLostError)
    expect(pools.stats().totals).toMatchObject({ idle: 0, active: 0 })
  })
})
