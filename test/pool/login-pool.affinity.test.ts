// Scope affinity: a scope with no idle connection bound to it takes the idle connection whose backend
// served its schema before (its catalog cache is warm), else the one that served the fewest schemas,
// and any idle one rather than wait. Driven through the registry against the real server, on two
// connections whose history each test sets up.
import type { TenantPools } from '../../lib'
import { createTenants, endTestPools, testPools, uniqueTenant } from '../support/db'

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = async (condition: () => boolean) => {
  for (let i = 0; i < 300 && !condition(); i++) await delay(10)
  expect(condition()).toBe(true)
}

const pidOf = async (pools: TenantPools, tenant: string): Promise<number> => {
  const { rows } = await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')
  return rows[0]?.pid as number
}

const idle = (pools: TenantPools) => pools.stats().totals.idle

// Two connections, one opened for `first` and one for `second`, both idle again, `first`'s freed
// first (so it is the one idle longest). Returns their backends' pids.
async function twoConnections(pools: TenantPools, first: string, second: string): Promise<[number, number]> {
  const entered: string[] = []
  const gates = new Map<string, () => void>()
  const hold = (tenant: string) =>
    pools.withClient(tenant, async (client) => {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
      await new Promise<void>((resolve) => {
        gates.set(tenant, resolve)
        entered.push(tenant)
      })
      return rows[0]?.pid as number
    })
  const heldFirst = hold(first)
  const heldSecond = hold(second)
  await until(() => entered.length === 2)
  gates.get(first)?.()
  const a = await heldFirst
  await until(() => idle(pools) === 1)
  gates.get(second)?.()
  const b = await heldSecond
  await until(() => idle(pools) === 2)
  expect(a).not.toBe(b)
  return [a, b]
}

// Each connection: the scope it is bound to and the schemas it served, fewest first.
const served = (pools: TenantPools) =>
  pools
    .stats()
    .logins.flatMap((l) => l.connections.map((c): [string, number] => [c.scope, c.schemasServed]))
    .sort((x, y) => x[1] - y[1])

describe('LoginPool: scope affinity', () => {
  const tenants = Array.from({ length: 4 }, () => uniqueTenant('affinity'))
  const [t1, t2, t3, t4] = tenants as [string, string, string, string]
  beforeAll(() => createTenants(tenants))
  afterEach(endTestPools)

  it('sends a scope back to the connection that served its schema, not to the one idle longest', async () => {
    // Prepare: A served t1, B served t2; then t3 takes A (equal counts: the one idle longest), and
    // A, bound to t3 now, is the newest idle one.
    const { pools } = testPools({ budget: 2, maxPerScope: 1, maxSchemasPerConnection: 0 })
    const [a, b] = await twoConnections(pools, t1, t2)
    expect(await pidOf(pools, t3)).toBe(a)

    // Act: t1 has no idle connection bound to it; B has been idle longest.
    const back = await pidOf(pools, t1)

    // Assess: A, whose backend has t1's catalog cached already.
    expect(back).toBe(a)
    expect(back).not.toBe(b)
    expect(served(pools)).toEqual([
      [t2, 1],
      [t1, 2],
    ])
    expect(pools.stats().counters.connectionsOpened).toBe(2)
  })

  it('gives a new schema the connection that served the fewest, not the one idle longest', async () => {
    // Prepare: A served t1 and t3, B served t2; A is the one idle longest.
    const { pools } = testPools({ budget: 2, maxPerScope: 1, maxSchemasPerConnection: 0 })
    const [a, b] = await twoConnections(pools, t1, t2)
    expect(await pidOf(pools, t3)).toBe(a)
    expect(await pidOf(pools, t2)).toBe(b)

    // Act
    const fresh = await pidOf(pools, t4)

    // Assess
    expect(fresh).toBe(b)
    expect(served(pools)).toEqual([
      [t3, 2],
      [t4, 2],
    ])
  })

  it('takes any idle connection under concurrency rather than wait for or open another', async () => {
    // Prepare: A served t1, B served t2; the budget would allow a third connection.
    const { pools } = testPools({ budget: 3, maxPerScope: 2, maxSchemasPerConnection: 0 })
    const [a, b] = await twoConnections(pools, t1, t2)

    // Act: two calls of t1 at once, each holding its connection until both have one.
    let both!: () => void
    const barrier = new Promise<void>((resolve) => {
      both = resolve
    })
    let inside = 0
    let waitingSeen = -1
    const call = () =>
      pools.withClient(t1, async (client) => {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')
        if (++inside === 2) {
          waitingSeen = pools.stats().totals.waiting
          both()
        }
        await barrier
        return rows[0]?.pid as number
      })
    const pids = await Promise.all([call(), call()])

    // Assess: both connections served t1 (B rebound to it), nobody waited, none was opened.
    expect(pids.sort()).toEqual([a, b].sort())
    expect(waitingSeen).toBe(0)
    expect(pools.stats().counters).toMatchObject({ connectionsOpened: 2, acquireTimeouts: 0 })
    expect(served(pools)).toEqual([
      [t1, 1],
      [t1, 2],
    ])
  })
})
