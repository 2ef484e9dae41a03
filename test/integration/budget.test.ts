import { PoolExhaustedError } from '../../lib'
import {
  createTenants,
  endTestPools,
  eventually,
  holdConnection,
  sampleBackends,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'

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
