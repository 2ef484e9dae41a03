// Behaviours found in review, each with the event sequence that used to break it.
import { ConnectError, type TenantPools } from '../../lib'
import {
  clusterBUrl,
  countBackends,
  createTenants,
  databaseUrl,
  endTestPools,
  eventually,
  holdConnection,
  resumeBackend,
  sampleBackends,
  sleep,
  stopBackend,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'
import { slowGoodbyeProxy } from '../support/slow-goodbye-proxy'

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

  it('frees the budget slot of a connection whose peer stopped answering, after the connect timeout', async () => {
    // Prepare: budget 1, held by an idle connection whose backend we stop. B logs in as another
    // role, so it cannot rebind A's connection: it needs A's slot.
    const [a, b] = [uniqueTenant('a'), uniqueTenant('b')]
    await createTenants([a, b])
    const role = `other_${b}`
    await withAdmin((admin) => admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'other'`))
    const { username, password } = new URL(databaseUrl())
    const { pools } = testPools({
      budget: 1,
      maxPerPool: 1,
      connectTimeoutMs: 1_500,
      credentials: async ({ tenantId }) =>
        tenantId === b
          ? { user: role, password: 'other' }
          : { user: decodeURIComponent(username), password: decodeURIComponent(password) },
    })
    const { rows } = await pools.query<{ pid: number }>(a, 'SELECT pg_backend_pid() AS pid')
    const pid = rows[0]?.pid as number
    stopBackend(pid)
    try {
      // Act: B needs A's slot; A's goodbye gets no answer
      const result = await pools.query<{ ok: number }>(b, 'SELECT 1 AS ok')

      // Assess
      expect(result.rows).toEqual([{ ok: 1 }])
      expect(pools.stats().budget.used).toBe(1)
      expect(pools.stats().logins).toHaveLength(2)
    } finally {
      resumeBackend(pid)
    }
  })

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

  it('end() also waits for pools evicted earlier whose connections are still in use', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, prefix } = testPools()
    const held = await holdConnection(pools, tenant, (client) => client.query('SELECT 1'))

    const evicted = pools.evict(tenant)
    let ended = false
    const ending = pools.end().then(() => {
      ended = true
    })
    await sleep(100)
    expect(ended).toBe(false)
    held.release()

    await Promise.all([held.done, evicted, ending])
    expect(await countBackends(prefix)).toBe(0)
  })

  it('is fair across tenants: a busy tenant cannot starve another one waiting for the budget', async () => {
    // Prepare: budget 1; tenant A keeps three callers busy back to back
    const [a, b] = [uniqueTenant('hot'), uniqueTenant('cold')]
    await createTenants([a, b])
    // The hot load outlasts B's connect timeout: without fairness B would time out.
    const { pools } = testPools({ budget: 1, maxPerPool: 1, connectTimeoutMs: 1_000 })
    const until = Date.now() + 3_000
    const hot = Promise.all(
      Array.from({ length: 3 }, async () => {
        while (Date.now() < until) await pools.query(a, 'SELECT pg_sleep(0.005)')
      }),
    )
    await sleep(100)

    // Act + Assess: B gets a turn well within its connect timeout
    await expect(pools.query<{ tenant: string }>(b, 'SELECT tenant FROM whoami')).resolves.toMatchObject({
      rows: [{ tenant: b }],
    })
    await hot
  })
})

describe('Behaviour: fairness without churn', () => {
  afterEach(endTestPools)

  async function loop(pools: TenantPools, tenant: string, callers: number, ms: number) {
    const until = Date.now() + ms
    let calls = 0
    await Promise.all(
      Array.from({ length: callers }, async () => {
        while (Date.now() < until) {
          await pools.query(tenant, 'SELECT 1')
          calls++
        }
      }),
    )
    return calls
  }

  it('a busy tenant alone keeps its connection instead of trading it with its own queued claim', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools } = testPools({ budget: 1, maxPerPool: 1 })

    const calls = await loop(pools, tenant, 4, 1_000)

    expect(calls).toBeGreaterThan(100)
    expect(pools.stats().counters.connectionsOpened).toBe(1)
  })

  it('two busy tenants share the budget without reconnecting on every release', async () => {
    const [a, b] = [uniqueTenant('a'), uniqueTenant('b')]
    await createTenants([a, b])
    const { pools } = testPools({ budget: 3, maxPerPool: 2 })

    const [ca, cb] = await Promise.all([loop(pools, a, 3, 2_000), loop(pools, b, 3, 2_000)])

    expect(ca).toBeGreaterThan(100)
    expect(cb).toBeGreaterThan(100)
    // Hand-overs happen at most once per fairness window (connectTimeoutMs / 4), not per call.
    expect(pools.stats().counters.connectionsOpened).toBeLessThan(30)
  })

  it('a caller who arrives late is not failed by an earlier attempt’s deadline', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    let calls = 0
    const { pools } = testPools({
      connectTimeoutMs: 1_000,
      maxPerPool: 2,
      // The first attempt's provider call never answers; later ones do.
      credentials: () =>
        ++calls === 1 ? new Promise(() => {}) : Promise.resolve({ user: 'postgres', password: 'postgres' }),
      connectionString: databaseUrl(),
    })

    const first = pools.query(tenant, 'SELECT 1 AS ok')
    await sleep(800)
    const second = pools.query(tenant, 'SELECT 2 AS ok')

    // The first caller's own attempt never answered: it fails at its connect timeout, and the
    // second, which came while that attempt hung, gets its own.
    await expect(first).rejects.toThrow(/took longer than 1000 ms/)
    await expect(second).resolves.toMatchObject({ rows: [{ ok: 2 }] })
  })
})

describe('Behaviour: the server never sees more than the budget, even when verify refuses', () => {
  afterEach(endTestPools)

  it('holds the slot of a refused proxy-safe connection until its socket is closed', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, prefix } = testPools({ proxySafe: true, budget: 1, maxPerPool: 1 })
    const sampler = sampleBackends(prefix)

    await Promise.allSettled(Array.from({ length: 30 }, () => pools.query(tenant, 'SELECT 1')))
    const peak = await sampler.stop()

    expect(peak).toBeLessThanOrEqual(1)
    expect(await eventually(async () => (await countBackends(prefix)) === 0)).toBe(true)
  })

  it('opens the next connection only after the refused one is gone at the server, however slow its goodbye', async () => {
    // A proxy holds each goodbye for 400 ms: a refused connection closed in the background would
    // still be open at the server when the next caller's connection opens.
    const proxy = await slowGoodbyeProxy(new URL(clusterBUrl()), 400)
    try {
      // No schema of that name on cluster b: the role's search_path never selects it, verify refuses.
      const { pools } = testPools({
        connectionString: clusterBUrl(),
        host: '127.0.0.1',
        port: proxy.port,
        proxySafe: true,
        budget: 1,
        maxPerPool: 1,
      })
      for (let i = 0; i < 3; i++) {
        await expect(pools.query(uniqueTenant(), 'SELECT 1')).rejects.toBeInstanceOf(ConnectError)
      }
      // Three connections, one after another, never two at once.
      expect(proxy.opened).toBe(3)
      expect(proxy.peakOpen).toBe(1)
    } finally {
      await endTestPools()
      await proxy.close()
    }
  })
})
