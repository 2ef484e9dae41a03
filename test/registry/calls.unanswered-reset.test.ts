// A statement met by a reset before any byte of its answer, as the first on its connection since a
// possible freeze (a backend gone while the environment was frozen: its FATAL and FIN were lost, and
// the next write is answered with an RST). Nothing of it reached a live backend, so it is sent again
// on another connection: the caller sees no failure and it runs once. Within an invocation a reset
// is reported (here one that did reach the server), never sent again.
import { createTenants, databaseUrl, endTestPools, testPools, uniqueTenant, withAdmin } from '../support/db'
import { type ResetProxy, resetProxy } from '../support/reset-proxy'

afterEach(endTestPools)

describe('Behaviour: a statement met by a reset with no answer', () => {
  let proxy: ResetProxy
  beforeEach(async () => {
    proxy = await resetProxy(new URL(databaseUrl()))
  })
  afterEach(() => proxy.close())

  async function world() {
    const id = uniqueTenant('ur')
    await createTenants([id])
    await withAdmin((c) => c.query(`CREATE TABLE tenant_${id}.calls (n int)`))
    const { pools } = testPools({ connectionString: proxy.url, budget: 2, maxPerPool: 2 })
    // A warm connection, then the reset armed on it.
    await pools.query(id, 'SELECT 1')
    const count = async (n: number) =>
      withAdmin(async (c) => {
        const { rows } = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM tenant_${id}.calls WHERE n = $1`,
          [n],
        )
        return rows[0]?.n
      })
    return { id, pools, count }
  }

  it.each([
    [
      'a query',
      (p: Awaited<ReturnType<typeof world>>, n: number) =>
        p.pools.query(p.id, `INSERT INTO calls VALUES (${n})`),
    ],
    [
      'a query with values',
      (p: Awaited<ReturnType<typeof world>>, n: number) =>
        p.pools.query(p.id, 'INSERT INTO calls VALUES ($1)', [n]),
    ],
    [
      'the pg.Pool handle',
      (p: Awaited<ReturnType<typeof world>>, n: number) =>
        p.pools.forTenant(p.id).asPgPool().query('INSERT INTO calls VALUES ($1)', [n]),
    ],
  ])('%s: sent again on another connection, and runs once', async (_, call) => {
    const w = await world()
    proxy.arm('drop')
    // A new invocation: a freeze may lie between the warm-up and the call.
    w.pools.invocationStarted()
    await expect(call(w, 1)).resolves.toMatchObject({ rowCount: 1 })
    expect(proxy.resets).toBe(1)
    expect(await w.count(1)).toBe(1)
    expect(w.pools.stats().counters.connectionsReplaced).toBeGreaterThanOrEqual(1)
  })

  it('within an invocation, a reset is reported and the statement never sent again', async () => {
    const w = await world()
    proxy.arm('after-forward')
    await expect(w.pools.query(w.id, 'INSERT INTO calls VALUES (2)')).rejects.toMatchObject({
      code: 'CONNECTION_LOST',
      mayHaveRun: true,
    })
    expect(await w.count(2)).toBe(1)
  })

  it('a read-only call that lost its connection says it cannot have run', async () => {
    const w = await world()
    await w.pools.forTenant(w.id, { readOnly: true }).query('SELECT 1')
    proxy.arm('after-forward')
    await expect(
      w.pools.forTenant(w.id, { readOnly: true }).query('SELECT count(*) FROM calls'),
    ).rejects.toMatchObject({
      code: 'CONNECTION_LOST',
      mayHaveRun: false,
    })
  })
})
