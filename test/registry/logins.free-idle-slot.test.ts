// When the budget, or a cluster's cap, is spent and a login needs a connection (logins.ts): the
// idle connection closed to make room is the one idle longest, and of the same cluster under a cap.
// Each tenant here logs in as a role of its own, so no connection can be rebound to another.
import {
  clusterBUrl,
  createTenants,
  databaseUrl,
  endTestPools,
  holdConnection,
  onServer,
  resumeBackend,
  sleep,
  stopBackend,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'

afterEach(endTestPools)

const admin = new URL(databaseUrl())
const adminLogin = { user: decodeURIComponent(admin.username), password: decodeURIComponent(admin.password) }

/** A role per tenant, made on the server at `url`; returns the tenants' logins. */
async function rolesOn(
  url: string,
  tenants: string[],
): Promise<Map<string, { user: string; password: string }>> {
  const logins = new Map<string, { user: string; password: string }>()
  await onServer(url, async (c) => {
    for (const t of tenants) {
      await c.query(`CREATE ROLE role_${t} LOGIN PASSWORD 'pw'`)
      logins.set(t, { user: `role_${t}`, password: 'pw' })
    }
  })
  return logins
}

const totalOf = (pools: ReturnType<typeof testPools>['pools'], user: string) =>
  pools.stats().logins.find((l) => l.key.endsWith(`|${user}`))?.total

describe('Registry: making room for a connection', () => {
  it('closes the connection idle longest, of whichever login', async () => {
    const tenants = ['o0', 'o1', 'o2', 'o3', 'o4'].map((label) => uniqueTenant(label))
    const [t0, t1, t2, t3, t4] = tenants as [string, string, string, string, string]
    const logins = await rolesOn(databaseUrl(), tenants)
    const { pools } = testPools({
      budget: 4,
      connectTimeoutMs: 1_000,
      credentials: async (r) => logins.get(r.tenantId as string) ?? adminLogin,
    })
    // The first login holds its one connection throughout: it has nothing idle to give.
    const held = await holdConnection(pools, t0)
    // Logins made in the order t1, t2, t3; used again so that the one idle longest, t2's, is
    // neither the first nor the last of them.
    for (const t of [t1, t2, t3, t1, t3]) {
      await pools.query(t, 'SELECT 1')
      await sleep(20)
    }
    await pools.query(t4, 'SELECT 1')
    expect(tenants.map((t) => totalOf(pools, `role_${t}`))).toEqual([1, 1, 0, 1, 1])
    held.release()
    await held.done
  })

  it("closes an idle connection of the capped cluster, not another cluster's older one", async () => {
    const m = uniqueTenant('m')
    const [x1, x2] = [uniqueTenant('x1'), uniqueTenant('x2')]
    const logins = await rolesOn(clusterBUrl(), [x1, x2])
    const { pools } = testPools({
      budget: 4,
      connectTimeoutMs: 1_000,
      clusters: { b: { connectionString: clusterBUrl(), maxConnections: 1 } },
      credentials: async (r) => logins.get(r.tenantId as string) ?? adminLogin,
    })
    await pools.query(m, 'SELECT 1')
    await sleep(20)
    await pools.query(x1, 'SELECT 1', [], { cluster: 'b' })
    await sleep(20)
    // b is at its cap, with x1's connection idle: x2 gets that slot, main's older idle one stays.
    await expect(pools.query(x2, 'SELECT 1 AS ok', [], { cluster: 'b' })).resolves.toMatchObject({
      rows: [{ ok: 1 }],
    })
    expect([
      totalOf(pools, `role_${x1}`),
      totalOf(pools, `role_${x2}`),
      totalOf(pools, adminLogin.user),
    ]).toEqual([0, 1, 1])
  })
})

// Found in review, with the event sequence that used to break it.
describe('Behaviour: edge cases of the pool', () => {
  afterEach(endTestPools)

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
})
