// PlacedDb on its own, on two real clusters (main and b): how it counts its calls (inFlight,
// settled()), and what it does with a call that met a tenant where it no longer is. A query or a
// transaction that meets an old copy is run once more on the tenant's new cluster, and the calls after
// it go there directly; withClient and asPgPool are never sent on; a tenant still moving, or a write
// refused by the fence, is TenantMovingError; any other failure is thrown as it is. The catalog's
// cache is made stale on purpose (the row changed after it was read), as another environment's move
// leaves it: only the invalidation PlacedDb makes can show it the new placement. Each call's
// checkouts (tenant calls and catalog look-ups made with the request's limits) are counted through a
// CallMeasure, so that a call run once too often, or a look-up missing, is seen.
import { migrateMaster, provisionTenant } from '../../functions/admin/provision'
import {
  fence,
  newCallMeasure,
  placedDb,
  TenantCatalog,
  TenantMovingError,
  type TenantPlacement,
  UnknownClusterError,
} from '../../lib'
import { clusterBUrl, endTestPools, testPools, uniqueTenant } from '../support/db'

describe('PlacedDb', () => {
  afterEach(endTestPools)

  async function world() {
    const t = testPools({ clusters: { b: { connectionString: clusterBUrl() } } })
    await migrateMaster(t.pools)
    // Long enough that only an invalidation makes it look again within a test.
    const catalog = new TenantCatalog(() => t.pools, { ttlMs: 3_600_000 })
    const master = t.pools.master
    // A tenant with its schema on `cluster`.
    const tenant = async (label: string, cluster: string) => {
      const id = uniqueTenant(label)
      await provisionTenant(t.pools, id, cluster)
      return id
    }
    // The placement the catalog gives while its row says `cluster`, kept in its cache after the row
    // is set back: a stale entry, as an environment that did not see a move has.
    const staleOn = async (id: string, cluster: string): Promise<TenantPlacement> => {
      const { rows } = await master.query<{ cluster: string }>('SELECT cluster FROM tenants WHERE id = $1', [
        id,
      ])
      await master.query('UPDATE tenants SET cluster = $2 WHERE id = $1', [id, cluster])
      catalog.invalidate(id)
      const placement = await catalog.placement(id)
      await master.query('UPDATE tenants SET cluster = $2 WHERE id = $1', [id, rows[0]?.cluster])
      expect(placement.cluster).toBe(cluster)
      return placement
    }
    // A request's database, counting its checkouts.
    const request = (id: string, placement: TenantPlacement, readOnly?: boolean) => {
      const measure = newCallMeasure()
      const db = placedDb({ pools: t.pools, catalog, tenantId: id, placement, limits: { measure }, readOnly })
      return { db, measure }
    }
    const ordersOn = async (id: string, cluster: string) => {
      const { rows } = await t.pools.query<{ n: number }>(id, 'SELECT count(*)::int AS n FROM orders', [], {
        cluster,
      })
      return rows[0]?.n
    }
    return { ...t, catalog, master, tenant, staleOn, request, ordersOn }
  }

  const insertOrder = (reference: string): [string, string[]] => [
    `INSERT INTO orders (reference, customer, total_cents) VALUES ($1, 'c', 1)`,
    [reference],
  ]

  // The error a call rejected with (failing the test if it resolved).
  const failure = async (call: Promise<unknown>) => {
    const outcome = await call.then(
      (value) => ({ value }),
      (err: unknown) => ({ err }),
    )
    if (!('err' in outcome)) throw new Error(`expected a failure, got ${JSON.stringify(outcome.value)}`)
    return outcome.err as Error & { code?: string; cause?: { code?: string } }
  }

  const expectMoving = (err: Error & { cause?: { code?: string } }, id: string, causeCode: string) => {
    expect(err).toBeInstanceOf(TenantMovingError)
    expect((err as TenantMovingError).code).toBe('TENANT_MOVING')
    expect(err.message).toBe(`Tenant ${id} is being moved to another cluster`)
    expect(err.cause?.code).toBe(causeCode)
  }

  it('counts its calls in inFlight, and settled() waits for the last of them to end', async () => {
    const { catalog, tenant, request } = await world()
    const id = await tenant('pf', 'main')
    const { db } = request(id, await catalog.placement(id))
    expect(db.inFlight).toBe(0)
    // Nothing running: resolves at once.
    await db.settled()
    expect(db.inFlight).toBe(0)

    const ended: string[] = []
    const query = db.query<{ n: number }>('SELECT 7 AS n, pg_sleep(0.05)')
    void query.then(() => ended.push('query'))
    expect(db.inFlight).toBe(1)
    const tx = db.transaction(async (client) => {
      await client.query('SELECT pg_sleep(0.1)')
      return 'tx-result'
    })
    void tx.then(() => ended.push('transaction'))
    expect(db.inFlight).toBe(2)
    await db.settled()
    expect(db.inFlight).toBe(0)
    expect(ended.sort()).toEqual(['query', 'transaction'])
    // Each call resolves with its own result.
    expect((await query).rows[0]?.n).toBe(7)
    await expect(tx).resolves.toBe('tx-result')
    await expect(
      db.withClient(async (client) => (await client.query('SELECT 8 AS n')).rows[0].n),
    ).resolves.toBe(8)
    expect(db.inFlight).toBe(0)
  })

  it('throws a failure that does not mean misplaced as it is, without asking the catalog again', async () => {
    const { catalog, tenant, request } = await world()
    const id = await tenant('pe', 'main')
    const placement = await catalog.placement(id)
    const { db, measure } = request(id, placement)

    const err = await failure(db.query('SELEC 1'))
    expect(err).not.toBeInstanceOf(TenantMovingError)
    expect(err.code).toBe('42601')
    expect(db.inFlight).toBe(0)
    // One checkout, the query's: the catalog entry was neither invalidated nor looked up again.
    expect(measure.checkouts).toBe(1)
    expect(catalog.cached(id)).toBe(placement)
    await db.settled()
  })

  it('rejects, not throws, a call that cannot even start, and does not count it as running', async () => {
    const { catalog, tenant, request } = await world()
    const id = await tenant('pu', 'main')
    const placement = await catalog.placement(id)
    // A cluster the registry does not know: the registry refuses before any connection.
    const { db, measure } = request(id, { status: 'active', cluster: 'nowhere', movingTo: null })
    let call: Promise<unknown> | undefined
    expect(() => {
      call = db.query('SELECT 1')
    }).not.toThrow()
    expect(await failure(call as Promise<unknown>)).toBeInstanceOf(UnknownClusterError)
    expect(db.inFlight).toBe(0)
    expect(measure.checkouts).toBe(0)
    expect(catalog.cached(id)).toBe(placement)
  })

  it("runs its calls on the placement's cluster, read-only when asked, and gives that cluster's pg.Pool", async () => {
    const { catalog, tenant, request, ordersOn } = await world()
    const id = await tenant('pb', 'b')
    const placement = await catalog.placement(id)
    expect(placement.cluster).toBe('b')
    const setting = "SELECT current_setting('transaction_read_only') AS ro, count(*)::int AS n FROM orders"

    const { db, measure } = request(id, placement)
    const [writer] = (await db.query<{ ro: string }>(setting)).rows
    expect(writer?.ro).toBe('off')
    const [reader] = (await request(id, placement, true).db.query<{ ro: string }>(setting)).rows
    expect(reader?.ro).toBe('on')

    await db.asPgPool().query(...insertOrder('via-pg-pool'))
    expect(await ordersOn(id, 'b')).toBe(1)
    expect(measure.checkouts).toBe(2)
  })

  it("sends a query that met the old copy on once to the tenant's new cluster, and the calls after it there directly", async () => {
    const { catalog, tenant, staleOn, request, ordersOn } = await world()
    // On b; this environment's catalog still says main, where no copy is.
    const id = await tenant('pq', 'b')
    const { db, measure } = request(id, await staleOn(id, 'main'))

    await db.query(...insertOrder('sent-on'))
    expect(db.inFlight).toBe(0)
    // The call on main, the catalog's look-up (after the invalidation), the call on b.
    expect(measure.checkouts).toBe(3)
    expect(catalog.cached(id)?.cluster).toBe('b')
    expect(await ordersOn(id, 'b')).toBe(1)

    // The next calls go to b at once: one checkout each, no look-up.
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')
    expect(rows[0]?.n).toBe(1)
    expect(measure.checkouts).toBe(4)
    await db.asPgPool().query(...insertOrder('pg-pool-after'))
    expect(await ordersOn(id, 'b')).toBe(2)
  })

  it('sends on every query of a request that met the old copy at once, not only the first to look again', async () => {
    const { catalog, tenant, staleOn, request, ordersOn } = await world()
    const id = await tenant('pc', 'b')
    const { db, measure } = request(id, await staleOn(id, 'main'))
    // Three at once, each on main before any has looked again: the first to look moves the
    // placement to b, and the others must still be sent on, for they too ran on main.
    const sent = await Promise.allSettled(['c1', 'c2', 'c3'].map((r) => db.query(...insertOrder(r))))
    expect(sent.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
    expect(db.inFlight).toBe(0)
    expect(catalog.cached(id)?.cluster).toBe('b')
    expect(await ordersOn(id, 'b')).toBe(3)
    // Three on main, three on b, and at least one look-up (concurrent ones may share it).
    expect(measure.checkouts).toBeGreaterThanOrEqual(7)
    expect(measure.checkouts).toBeLessThanOrEqual(9)
  })

  it("sends on a query that found the old copy's schema missing (3F000), not only its table (42P01)", async () => {
    const { pools, tenant, staleOn, request } = await world()
    const id = await tenant('ph', 'b')
    const { db, measure } = request(id, await staleOn(id, 'main'))
    const schema = pools.schemaOf(id)
    // The cast names the schema: on main, where it is not, it fails 3F000 (invalid_schema_name).
    const { rows } = await db.query<{ s: string }>('SELECT $1::regnamespace::text AS s', [schema])
    expect(rows[0]?.s).toBe(schema)
    expect(measure.checkouts).toBe(3)
  })

  it('keeps a read-only database read-only when it sends a query on', async () => {
    const { tenant, staleOn, request } = await world()
    const id = await tenant('pr', 'b')
    const { db, measure } = request(id, await staleOn(id, 'main'), true)
    const { rows } = await db.query<{ ro: string }>(
      "SELECT current_setting('transaction_read_only') AS ro, count(*) FROM orders",
    )
    expect(rows[0]?.ro).toBe('on')
    expect(measure.checkouts).toBe(3)
  })

  it('runs a transaction that met the old copy again on the new cluster: its function twice, its rows once', async () => {
    const { tenant, staleOn, request, ordersOn } = await world()
    const id = await tenant('pt', 'b')
    const { db, measure } = request(id, await staleOn(id, 'main'))
    let runs = 0
    const result = await db.transaction(async (client) => {
      runs++
      await client.query(...insertOrder('tx'))
      return `run ${runs}`
    })
    expect(result).toBe('run 2')
    expect(runs).toBe(2)
    expect(measure.checkouts).toBe(3)
    expect(await ordersOn(id, 'b')).toBe(1)
    expect(db.inFlight).toBe(0)
  })

  it('does not send withClient on: TenantMovingError, caused by what the old copy answered', async () => {
    const { catalog, tenant, staleOn, request, ordersOn } = await world()
    const id = await tenant('pw', 'b')
    const { db, measure } = request(id, await staleOn(id, 'main'))
    let runs = 0
    const err = await failure(
      db.withClient(async (client) => {
        runs++
        await client.query(...insertOrder('with-client'))
      }),
    )
    expectMoving(err, id, '42P01')
    expect(runs).toBe(1)
    // The call on main and the look-up; nothing on b.
    expect(measure.checkouts).toBe(2)
    expect(await ordersOn(id, 'b')).toBe(0)
    expect(db.inFlight).toBe(0)
    // The catalog was corrected all the same.
    expect(catalog.cached(id)?.cluster).toBe('b')
  })

  it("does not send asPgPool's calls on: they fail on the old copy as they are", async () => {
    const { catalog, tenant, staleOn, request } = await world()
    const id = await tenant('pp', 'b')
    const placement = await staleOn(id, 'main')
    const { db } = request(id, placement)
    const err = await failure(db.asPgPool().query('SELECT count(*) FROM orders'))
    expect(err.code).toBe('42P01')
    expect(catalog.cached(id)).toBe(placement)
  })

  it('refuses a tenant still being moved with TenantMovingError, even a query, and runs nothing again', async () => {
    const { master, tenant, request, catalog } = await world()
    const id = await tenant('pm', 'main')
    const placement = await catalog.placement(id)
    await master.query(`UPDATE tenants SET moving_to = 'b' WHERE id = $1`, [id])
    const { db, measure } = request(id, placement)
    // Neither fenced nor moved yet: only the catalog's moving_to says so.
    expectMoving(await failure(db.query('SELECT * FROM no_such_table')), id, '42P01')
    expect(measure.checkouts).toBe(2)
    expect(db.inFlight).toBe(0)
  })

  it('refuses a tenant moved and already moving again, rather than sending the call on', async () => {
    const { master, tenant, staleOn, request, ordersOn } = await world()
    const id = await tenant('pa', 'b')
    const placement = await staleOn(id, 'main')
    await master.query(`UPDATE tenants SET moving_to = 'main' WHERE id = $1`, [id])
    const { db, measure } = request(id, placement)
    expectMoving(await failure(db.query(...insertOrder('moving-again'))), id, '42P01')
    expect(measure.checkouts).toBe(2)
    expect(await ordersOn(id, 'b')).toBe(0)
  })

  it('refuses a write the fence refused with TenantMovingError, though the catalog shows no move', async () => {
    const { catalog, pools, tenant, request, ordersOn } = await world()
    const id = await tenant('pz', 'main')
    const placement = await catalog.placement(id)
    await pools.withClient(id, (client) => fence(client, pools.schemaOf(id)))
    const { db, measure } = request(id, placement)
    expectMoving(await failure(db.query(...insertOrder('fenced'))), id, 'TPM01')
    expect(measure.checkouts).toBe(2)
    expect(await ordersOn(id, 'main')).toBe(0)
    // Reads are not fenced.
    await expect(db.query('SELECT count(*) FROM orders')).resolves.toMatchObject({ rowCount: 1 })
  })

  it('throws a misplaced error as it is when the catalog shows the tenant where the call went', async () => {
    const { catalog, tenant, request } = await world()
    const id = await tenant('ps', 'main')
    const { db, measure } = request(id, await catalog.placement(id))
    const err = await failure(db.query('SELECT * FROM no_such_table'))
    expect(err).not.toBeInstanceOf(TenantMovingError)
    expect(err.code).toBe('42P01')
    // Looked up again (it might have moved), but not run again.
    expect(measure.checkouts).toBe(2)
    expect(db.inFlight).toBe(0)
  })

  it('does not send a call on to a cluster where the tenant is not active', async () => {
    const { master, tenant, staleOn, request, ordersOn } = await world()
    const id = await tenant('pd', 'b')
    const placement = await staleOn(id, 'main')
    await master.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [id])
    const { db, measure } = request(id, placement)
    const err = await failure(db.query(...insertOrder('suspended')))
    expect(err).not.toBeInstanceOf(TenantMovingError)
    expect(err.code).toBe('42P01')
    expect(measure.checkouts).toBe(2)
    expect(await ordersOn(id, 'b')).toBe(0)
  })
})
