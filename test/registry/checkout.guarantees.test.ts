// Guarantees that a weaker pool would break silently, each tested by the behaviour a caller sees:
// a silently dead connection is replaced via the ping; a server that never answers a connect is
// given up on; waiters are refused at once when their pool ends; the credentials provider's failure
// arrives typed, with its cause.
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { ConnectError, CredentialsError, PoolsEndedError, StatementTimeoutError } from '../../lib'
import {
  createTenants,
  endTestPools,
  holdConnection,
  resumeBackend,
  sleep,
  stopBackend,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'

afterEach(endTestPools)

const pidOf = async (pools: ReturnType<typeof testPools>['pools'], tenant: string) =>
  (await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number

describe('Guarantee: a silently dead connection is found by the ping and replaced', () => {
  it('replaces a connection whose backend stopped answering (no FATAL, the socket still open)', async () => {
    const tenant = uniqueTenant('sd')
    await createTenants([tenant])
    const { pools } = testPools({ validateAfterIdleMs: 30, validationTimeoutMs: 300 })
    const stopped = await pidOf(pools, tenant)
    // The backend freezes: it reads nothing and sends nothing, as after a failover or a partition.
    stopBackend(stopped)
    // Idle past validateAfterIdleMs: the next checkout pings it first.
    await sleep(60)
    try {
      const next = await pidOf(pools, tenant)
      expect(next).not.toBe(stopped)
      expect(pools.stats().counters).toMatchObject({ validationTimeouts: 1, connectionsOpened: 2 })
    } finally {
      resumeBackend(stopped)
      await withAdmin((a) => a.query('SELECT pg_terminate_backend($1)', [stopped]))
    }
  })
})

describe('Guarantee: after a statement goes unanswered, every idle connection is pinged first', () => {
  it('pings one idle for no time at all, and replaces it when its server is gone too', async () => {
    const tenant = uniqueTenant('su')
    await createTenants([tenant])
    // A clock that stands still: no connection is ever idle long enough to be pinged for that.
    const now = 1_000_000
    const { pools } = testPools({
      maxPerPool: 2,
      statementTimeoutMs: 200,
      statementTimeoutMarginMs: 100,
      validationTimeoutMs: 300,
      clock: { now: () => now },
    })
    const sleepy = 'SELECT pg_backend_pid() AS pid, pg_sleep(0.1)'
    const both = await Promise.all([0, 1].map(() => pools.query<{ pid: number }>(tenant, sleepy)))
    const pids = both.map((r) => r.rows[0]?.pid as number)
    expect(new Set(pids).size).toBe(2)
    // The server stops answering on both connections; one statement finds out.
    for (const pid of pids) stopBackend(pid)
    await expect(pools.query(tenant, 'SELECT 1')).rejects.toBeInstanceOf(StatementTimeoutError)

    // Act: the other connection is handed out only after a ping, which goes unanswered too.
    const next = await pidOf(pools, tenant)

    // Assess
    expect(pids).not.toContain(next)
    expect(pools.stats().counters).toMatchObject({
      statementTimeouts: 1,
      validationTimeouts: 1,
      connectionsOpened: 3,
    })
  })
})

describe('Guarantee: a connect that gets no answer is given up on', () => {
  it('fails with ConnectError within the connect timeout, and frees the budget for the next call', async () => {
    // Accepts TCP, answers nothing: a server that hangs during the handshake.
    const sockets = new Set<Socket>()
    const silent = createServer((s) => {
      sockets.add(s)
      s.on('error', () => {})
    })
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    try {
      const { port } = silent.address() as { port: number }
      const { pools } = testPools({
        host: '127.0.0.1',
        port,
        connectTimeoutMs: 300,
        budget: 1,
        maxPerPool: 1,
      })
      await expect(pools.query(uniqueTenant('hg'), 'SELECT 1')).rejects.toBeInstanceOf(ConnectError)
      // The slot came back: a second call tries (and fails the same way) instead of waiting for ever.
      await expect(pools.query(uniqueTenant('hg'), 'SELECT 1')).rejects.toBeInstanceOf(ConnectError)
      expect(pools.stats().budget).toMatchObject({ waiting: 0 })
      expect(sockets.size).toBe(2)
    } finally {
      for (const s of sockets) s.destroy()
      silent.close()
    }
  })
})

describe('Guarantee: waiters are refused at once when their pool ends', () => {
  it.each(['end', 'evict'] as const)('rejects a waiting call with PoolsEndedError on %s()', async (how) => {
    const tenant = uniqueTenant('we')
    await createTenants([tenant])
    const { pools } = testPools({ maxPerPool: 1, connectTimeoutMs: 10_000 })
    const held = await holdConnection(pools, tenant)
    const waiting = pools.query(tenant, 'SELECT 1').then(
      () => 'answered',
      (err: unknown) => err,
    )
    await sleep(50)
    expect(pools.stats().totals.waiting).toBe(1)
    const ending = how === 'end' ? pools.end() : pools.evict(tenant)
    // Refused now, not after the 10 s connect timeout with PoolExhaustedError.
    expect(await waiting).toBeInstanceOf(PoolsEndedError)
    held.release()
    await held.done
    await ending
  })
})

describe('Guarantee: a failing credentials provider is reported as such', () => {
  it.each([
    ['an error', new Error('secret store down')],
    ['nothing at all', undefined],
  ])(
    'rejects with CredentialsError carrying what the provider threw (%s), and opens nothing',
    async (_, boom) => {
      const { pools } = testPools({
        credentials: async () => {
          throw boom
        },
      })
      const tenant = uniqueTenant('cr')
      const err = await pools.query(tenant, 'SELECT 1').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(CredentialsError)
      expect((err as CredentialsError).message).toBe(`The credentials provider failed for pool ${tenant}`)
      expect((err as CredentialsError).cause).toBe(boom)
      expect(pools.stats().counters.connectionsOpened).toBe(0)
    },
  )

  // The registry asks the provider for a scope's login first; the connector asks again for each
  // connection, and is the first to ask in proxy-safe mode. Each place wraps the failure alike.
  it.each([
    ['when it fails for a connection, after the login was found', false, 1],
    ['in proxy-safe mode, where no login is looked up', true, 0],
  ])('rejects with CredentialsError %s', async (_, proxySafe, answered) => {
    const boom = new Error('secret store down')
    let calls = 0
    const { pools } = testPools({
      proxySafe,
      credentials: async () => {
        if (calls++ < answered) return { user: 'postgres', password: 'postgres' }
        throw boom
      },
    })
    const tenant = uniqueTenant('cc')
    const err = await pools.query(tenant, 'SELECT 1').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CredentialsError)
    expect((err as CredentialsError).message).toBe(`The credentials provider failed for pool ${tenant}`)
    expect((err as CredentialsError).cause).toBe(boom)
    expect(calls).toBe(answered + 1)
    expect(pools.stats().counters.connectionsOpened).toBe(0)
  })
})

// Found in review, with the event sequence that used to break it.
describe('Behaviour: edge cases of the pool', () => {
  afterEach(endTestPools)

  it('bounds opening a connection by the connect timeout, even when the credentials provider hangs', async () => {
    const tenant = uniqueTenant()
    const { pools } = testPools({ connectTimeoutMs: 200, credentials: () => new Promise(() => {}) })

    await expect(pools.query(tenant, 'SELECT 1')).rejects.toBeInstanceOf(ConnectError)
    await expect(pools.query(tenant, 'SELECT 1')).rejects.toThrow(/took longer than 200 ms/)
    // Neither the budget nor end() is held hostage by the attempts that never answered.
    await pools.end()
    expect(pools.stats().budget.used).toBe(0)
  })

  it('pings connections idle past validateAfterIdleMs once, not again on each hand-over', async () => {
    let now = 1_000_000
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools({ clock: { now: () => now }, maxPerPool: 2, validateAfterIdleMs: 1_000 })
    await Promise.all([
      pools.query(tenant, 'SELECT pg_sleep(0.05)'),
      pools.query(tenant, 'SELECT pg_sleep(0.05)'),
    ])

    now += 5_000
    await Promise.all(Array.from({ length: 20 }, () => pools.query(tenant, 'SELECT 1')))

    expect(pools.stats().counters.connectionsPinged).toBe(2)
  })
})
