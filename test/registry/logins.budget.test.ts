import { ConnectError, PoolExhaustedError, type TenantPools } from '../../lib'
import {
  clusterBUrl,
  countBackends,
  createTenants,
  databaseUrl,
  endTestPools,
  eventually,
  holdConnection,
  sampleBackends,
  sleep,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'
import { slowGoodbyeProxy } from '../support/slow-goodbye-proxy'

const backendsOf = (prefix: string) =>
  withAdmin(async (admin) => {
    const { rows } = await admin.query<{ name: string }>(
      'SELECT application_name AS name FROM pg_stat_activity WHERE application_name LIKE $1 ORDER BY 1',
      [`${prefix}:%`],
    )
    return rows.map((r) => r.name.slice(prefix.length + 1))
  })

describe('Behaviour: per-environment budget', () => {
  afterEach(endTestPools)

  it('never has more open connections at the server than the budget, under load over 10 tenants', async () => {
    // Prepare
    const tenants = Array.from({ length: 10 }, (_, i) => uniqueTenant(`b${i}`))
    await createTenants(tenants)
    const { pools, prefix } = testPools({ budget: 4, maxPerPool: 2, connectTimeoutMs: 20_000 })
    const sampler = sampleBackends(prefix)

    // Act
    await Promise.all(
      Array.from({ length: 400 }, (_, i) =>
        pools.query(tenants[i % tenants.length] as string, 'SELECT pg_sleep(0.002)'),
      ),
    )
    const peakAtServer = await sampler.stop()

    // Assess: the load really needed more than the budget (one login: the connections were rebound
    // between the tenants instead of reopened), and the server never saw more
    const { counters, budget } = pools.stats()
    expect(counters.connectionsOpened).toBe(4)
    expect(counters.connectionsRebound).toBeGreaterThan(10)
    expect(peakAtServer).toBeGreaterThan(0)
    expect(peakAtServer).toBeLessThanOrEqual(4)
    expect(budget.used).toBeLessThanOrEqual(4)
  })

  it('rebinds the least recently used idle connection of the login when the budget is spent', async () => {
    // Prepare: budget 2, used by idle connections of A (older) and B (newer)
    const [a, b, c] = [uniqueTenant('a'), uniqueTenant('b'), uniqueTenant('c')]
    await createTenants([a, b, c])
    const { pools, prefix } = testPools({ budget: 2, maxPerPool: 2 })
    const holdA = await holdConnection(pools, a)
    const holdB = await holdConnection(pools, b)
    holdA.release()
    await holdA.done
    holdB.release()
    await holdB.done
    expect(await backendsOf(prefix)).toEqual([a, b].sort())

    // Act
    await pools.query(c, 'SELECT 1')

    // Assess: A's connection now serves C (application_name follows the binding); nothing reopened
    expect(await backendsOf(prefix)).toEqual([b, c].sort())
    expect(pools.stats().budget.used).toBe(2)
    expect(pools.stats().counters).toMatchObject({ connectionsOpened: 2, connectionsRebound: 1 })
  })

  it('gives a waiting caller the first connection released, within the connect timeout', async () => {
    const [a, b, c] = [uniqueTenant('a'), uniqueTenant('b'), uniqueTenant('c')]
    await createTenants([a, b, c])
    const { pools } = testPools({ budget: 2, maxPerPool: 1, connectTimeoutMs: 10_000 })
    const first = await holdConnection(pools, a)
    const second = await holdConnection(pools, b)

    const waiting = pools.query<{ tenant: string }>(c, 'SELECT tenant FROM whoami')
    expect(await eventually(() => pools.stats().budget.waiting === 1)).toBe(true)
    first.release()

    await expect(waiting).resolves.toMatchObject({ rows: [{ tenant: c }] })
    second.release()
    await Promise.all([first.done, second.done])
  })

  it('fails a caller with PoolExhaustedError, not a hang, when nothing frees up in time', async () => {
    const [a, b, c] = [uniqueTenant('a'), uniqueTenant('b'), uniqueTenant('c')]
    await createTenants([a, b, c])
    const { pools } = testPools({ budget: 2, maxPerPool: 1, connectTimeoutMs: 300 })
    const first = await holdConnection(pools, a)
    const second = await holdConnection(pools, b)

    await expect(pools.query(c, 'SELECT 1')).rejects.toBeInstanceOf(PoolExhaustedError)
    // The same holds when the tenant's own pool is full.
    await expect(pools.query(a, 'SELECT 1')).rejects.toMatchObject({ code: 'POOL_EXHAUSTED' })

    first.release()
    second.release()
    await Promise.all([first.done, second.done])
    // Nothing was left queued: the budget recovers and the next call succeeds.
    await expect(pools.query(c, 'SELECT 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] })
    expect(pools.stats().budget.waiting).toBe(0)
    expect(pools.stats().counters.acquireTimeouts).toBe(2)
  })
})

describe('Behaviour: a checkout nested in a callback that holds a connection', () => {
  afterEach(endTestPools)

  it('fails with a PoolExhaustedError that says the call already holds a connection', async () => {
    const [a, b] = [uniqueTenant('nest'), uniqueTenant('other')]
    await createTenants([a, b])
    const { pools } = testPools({ budget: 1, maxPerPool: 1, connectTimeoutMs: 300 })

    // The same tenant (its per-scope limit) and another tenant (the budget): both are nested
    for (const inner of [a, b]) {
      const err = await pools
        .transaction(a, async () => pools.query(inner, 'SELECT 1'))
        .catch((e: unknown) => e)
      expect(err).toBeInstanceOf(PoolExhaustedError)
      // The pool's own refusal is kept as the cause, and its message closes the explanation.
      const cause = (err as Error).cause
      expect(cause).toBeInstanceOf(PoolExhaustedError)
      expect((err as Error).message).toBe(
        `A checkout for pool ${inner} while this call already holds 1 connection(s) (a query inside a ` +
          "withClient or transaction callback) found none free: use the callback's client instead of the " +
          `registry inside it. ${(cause as Error).message}`,
      )
    }
    // Not nested: the plain message, without the claim
    const holder = await holdConnection(pools, a)
    const plain = await pools.query(b, 'SELECT 1').catch((e: unknown) => e)
    expect(plain).toBeInstanceOf(PoolExhaustedError)
    expect((plain as Error).message).not.toMatch(/already holds/)
    holder.release()
    await holder.done
  })
})

// Found in review, with the event sequence that used to break it.
describe('Behaviour: edge cases of the pool', () => {
  afterEach(endTestPools)

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

// Found in review, with the event sequence that used to break it.
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

// Found in review, with the event sequence that used to break it.
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
