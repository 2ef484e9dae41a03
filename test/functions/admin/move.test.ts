// Moving a tenant between two real clusters: under load from two environments (one whose catalog
// cache is stale), and a move that fails part way.
import { moveTenant } from '../../../functions/admin/move'
import { migrateMaster, provisionTenant } from '../../../functions/admin/provision'
import { type Log, placedDb, TenantCatalog, TenantMovingError, TenantPools } from '../../../lib'
import { clusterBUrl, databaseUrl, onServer, uniqueTenant } from '../../support/db'
import { memoryLog } from '../../support/memory-log'
import { answerOf, fingerprint, seedOrders, stateOf, unsettled, untrue } from '../../support/move-check'

// The registries' own log lines stay out of the run's output.
const quiet = memoryLog().log

const referencesOn = (url: string, id: string) =>
  onServer(url, async (c) => {
    const { rows: exists } = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [`tenant_${id}`])
    if (exists.length === 0) return undefined
    const { rows } = await c.query<{ reference: string }>(`SELECT reference FROM tenant_${id}.orders`)
    return new Set(rows.map((r) => r.reference))
  })

// One environment: its registry and its catalog cache.
const environment = (catalogTtlMs: number) => {
  const pools = new TenantPools({
    logger: quiet,
    connectionString: databaseUrl(),
    clusters: { b: { connectionString: clusterBUrl() } },
  })
  const catalog = new TenantCatalog(() => pools, { ttlMs: catalogTtlMs })
  // What the tenantDb middleware does for one request.
  const request = async (id: string) => {
    const placement = await catalog.placement(id)
    return placedDb({ pools, catalog, tenantId: id, placement, limits: {} })
  }
  return { pools, catalog, request }
}

describe('Moving a tenant', () => {
  const envs: Array<ReturnType<typeof environment>> = []
  const env = (ttl: number) => {
    const e = environment(ttl)
    envs.push(e)
    return e
  }
  afterEach(async () => {
    await Promise.all(envs.splice(0).map((e) => e.pools.end()))
  })

  it('keeps every acknowledged write and every read under load, with a stale environment writing', async () => {
    const mover = env(30_000)
    const stale = env(3_600_000)
    await migrateMaster(mover.pools)
    const moving = uniqueTenant('mv')
    const other = uniqueTenant('ot')
    await provisionTenant(mover.pools, moving, 'main')
    await provisionTenant(mover.pools, other, 'main')
    // The stale environment learns the placement now, and keeps it for an hour.
    expect((await stale.catalog.placement(moving)).cluster).toBe('main')
    const acknowledged = new Map<string, Set<string>>([
      [moving, new Set()],
      [other, new Set()],
    ])
    const outcomes = { writes: 0, refused: 0, readsFailed: [] as string[], writesFailed: [] as string[] }
    let running = true
    let n = 0
    const caller = async (e: ReturnType<typeof environment>, id: string) => {
      while (running) {
        const reference = `r${n++}`
        const db = await e.request(id).catch((err) => {
          outcomes.readsFailed.push(`placement ${(err as { code?: string }).code}`)
          return undefined
        })
        if (!db) continue
        try {
          await db.query(`INSERT INTO orders (reference, customer, total_cents) VALUES ($1, 'c', 1)`, [
            reference,
          ])
          acknowledged.get(id)?.add(reference)
          outcomes.writes++
        } catch (err) {
          if (err instanceof TenantMovingError) outcomes.refused++
          else outcomes.writesFailed.push(String((err as { code?: string }).code))
        }
        await db.query('SELECT count(*) FROM orders').catch((err: { code?: string }) => {
          outcomes.readsFailed.push(String(err.code))
        })
      }
    }
    const callers = [
      ...Array.from({ length: 4 }, () => caller(mover, moving)),
      ...Array.from({ length: 3 }, () => caller(stale, moving)),
      ...Array.from({ length: 3 }, () => caller(mover, other)),
    ]
    await new Promise((r) => setTimeout(r, 200))
    const { log, entries } = memoryLog()
    let report: Awaited<ReturnType<typeof moveTenant>>
    try {
      report = await moveTenant(mover.pools, mover.catalog, moving, 'b', log as Log)
      await new Promise((r) => setTimeout(r, 300))
    } catch (err) {
      throw new Error(`move failed: ${JSON.stringify(entries)}`, { cause: err })
    } finally {
      running = false
      await Promise.allSettled(callers)
    }

    expect(report).toMatchObject({ from: 'main', to: 'b', oldCopyRemoved: true })
    expect(outcomes.readsFailed).toEqual([])
    expect(outcomes.writesFailed).toEqual([])
    expect(outcomes.writes).toBeGreaterThan(20)
    // Every acknowledged write of the moved tenant is on b, and its old copy is gone from main.
    const onB = await referencesOn(clusterBUrl(), moving)
    expect(await referencesOn(databaseUrl(), moving)).toBeUndefined()
    const missing = [...(acknowledged.get(moving) ?? [])].filter((r) => !onB?.has(r))
    expect(missing).toEqual([])
    // The other tenant stayed where it was, with all of its writes.
    const otherOnMain = await referencesOn(databaseUrl(), other)
    expect([...(acknowledged.get(other) ?? [])].filter((r) => !otherOnMain?.has(r))).toEqual([])
    // The stale environment was sent to b by the fence and the removal, not by its cache.
    expect((await stale.catalog.placement(moving)).cluster).toBe('b')
  })

  it('refuses writes on the old copy once fenced, from any environment, and changes nothing there', async () => {
    const mover = env(30_000)
    await migrateMaster(mover.pools)
    const id = uniqueTenant('fe')
    await provisionTenant(mover.pools, id, 'main')
    const { fence } = await import('../../../lib')
    await mover.pools.withClient(id, (c) => fence(c, `tenant_${id}`))
    // A raw connection, as an environment that knows nothing of the move would have.
    await expect(
      onServer(databaseUrl(), (c) =>
        c.query(`INSERT INTO tenant_${id}.orders (reference, customer, total_cents) VALUES ('x', 'c', 1)`),
      ),
    ).rejects.toMatchObject({ code: 'TPM01' })
    await expect(
      onServer(databaseUrl(), (c) => c.query(`TRUNCATE tenant_${id}.order_lines`)),
    ).rejects.toMatchObject({
      code: 'TPM01',
    })
    expect((await referencesOn(databaseUrl(), id))?.size).toBe(0)
  })

  it('leaves the tenant on its cluster, writable, when the move fails part way', async () => {
    const mover = env(30_000)
    await migrateMaster(mover.pools)
    const id = uniqueTenant('fl')
    await provisionTenant(mover.pools, id, 'main')
    const db = await mover.request(id)
    await db.query(`INSERT INTO orders (reference, customer, total_cents) VALUES ('before', 'c', 1)`)
    // A table no migration made: the copy has nowhere to put its rows, and the move fails.
    await onServer(databaseUrl(), (c) =>
      c.query(`CREATE TABLE tenant_${id}.stray (x int); INSERT INTO tenant_${id}.stray VALUES (1)`),
    )
    const { log, entries } = memoryLog()
    // Failed where it should: the copy found no table `stray` on the target.
    await expect(moveTenant(mover.pools, mover.catalog, id, 'b', log as Log)).rejects.toMatchObject({
      status: 503,
      code: 'MOVE_FAILED',
      cause: { code: '42P01' },
    })
    expect(entries.some((e) => e.message.startsWith('tenant move failed'))).toBe(true)
    const after = await mover.request(id)
    await after.query(`INSERT INTO orders (reference, customer, total_cents) VALUES ('after', 'c', 1)`)
    expect(await referencesOn(databaseUrl(), id)).toEqual(new Set(['before', 'after']))
    expect(await referencesOn(clusterBUrl(), id)).toBeUndefined()
    expect(await mover.catalog.placement(id)).toEqual({ status: 'active', cluster: 'main', movingTo: null })
  })

  it('undoes a failed move of a tenant whose foreign keys form a cycle, and the tenant is not left moving', async () => {
    const mover = env(30_000)
    await migrateMaster(mover.pools)
    const id = uniqueTenant('cy')
    await provisionTenant(mover.pools, id, 'main')
    // Two tables no migration made, referencing each other: the copy has nowhere to put them, so
    // the move fails; its undo (the capture and the fence taken down) must still order the tables.
    await onServer(databaseUrl(), (c) =>
      c.query(`CREATE TABLE tenant_${id}.ca (id int PRIMARY KEY, cb int);
        CREATE TABLE tenant_${id}.cb (id int PRIMARY KEY, ca int REFERENCES tenant_${id}.ca);
        ALTER TABLE tenant_${id}.ca ADD FOREIGN KEY (cb) REFERENCES tenant_${id}.cb`),
    )
    const { log } = memoryLog()
    await expect(moveTenant(mover.pools, mover.catalog, id, 'b', log as Log)).rejects.toMatchObject({
      status: 503,
      code: 'MOVE_FAILED',
    })
    expect(await mover.catalog.placement(id)).toEqual({ status: 'active', cluster: 'main', movingTo: null })
    const after = await mover.request(id)
    await after.query(`INSERT INTO orders (reference, customer, total_cents) VALUES ('after', 'c', 1)`)
    await after.query('TRUNCATE ca, cb')
    expect(await referencesOn(databaseUrl(), id)).toEqual(new Set(['after']))
    expect(await referencesOn(clusterBUrl(), id)).toBeUndefined()
  })

  it('undoes a move whose target connection dies mid-copy, without waiting on the broken stream', async () => {
    const mover = env(30_000)
    await migrateMaster(mover.pools)
    const id = uniqueTenant('dd')
    await provisionTenant(mover.pools, id, 'main')
    // Enough rows that the source is still streaming when the target's COPY fails.
    await seedOrders(id, 2_000)
    const expected = await fingerprint('main', id)
    if (!expected) throw new Error('the seeded tenant has no schema')
    const { log } = memoryLog()
    const killTarget = () =>
      onServer(clusterBUrl(), (c) =>
        c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1`, [
          `%:${id}@b`,
        ]),
      )
    const answer = await answerOf(
      moveTenant(mover.pools, mover.catalog, id, 'b', log as Log, {
        onStep: async (step) => {
          if (step === 'copy') await killTarget()
        },
      }),
    )
    expect(answer).toMatchObject({ ok: false, status: 503, code: 'MOVE_FAILED' })
    expect(unsettled(await stateOf(id), expected)).toEqual([])
    expect(untrue(answer, 'main', 'b', 'main')).toBeUndefined()
  }, 20_000)

  it('answers a caller mistake with a 4xx', async () => {
    const mover = env(30_000)
    await migrateMaster(mover.pools)
    const id = uniqueTenant('er')
    await provisionTenant(mover.pools, id, 'main')
    const { log } = memoryLog()
    await expect(moveTenant(mover.pools, mover.catalog, id, 'nope', log as Log)).rejects.toMatchObject({
      status: 400,
    })
    await expect(moveTenant(mover.pools, mover.catalog, id, 'main', log as Log)).rejects.toMatchObject({
      status: 409,
    })
    await expect(
      moveTenant(mover.pools, mover.catalog, uniqueTenant('no'), 'b', log as Log),
    ).rejects.toMatchObject({
      status: 404,
    })
  })
})
