// TenantCatalog on its own, against the real master schema: what placement(), status() and cached()
// answer for a known tenant and an unknown id, how long each answer is kept (checked at the
// millisecond before and at the TTL, with an injected clock), one look-up shared by concurrent
// callers, invalidate() and clear(), the whole cache dropped when maxEntries is reached, and a
// failed look-up forgotten at once. Look-ups are counted as the registry's checkouts: each test has a
// registry of its own, and only the catalog uses it between two readings.
import { migrateMaster } from '../../functions/admin/provision'
import { DeadlineExceededError, TenantCatalog, type TenantCatalogOptions } from '../../lib'
import { endTestPools, testPools, uniqueTenant } from '../support/db'

describe('TenantCatalog', () => {
  afterEach(endTestPools)

  // A registry of its own (so that its checkouts are the catalog's look-ups), the master schema
  // migrated, a catalog on a clock the test moves, and a way to write the catalog's rows.
  async function world(options: TenantCatalogOptions = {}, mainCluster?: string) {
    const t = testPools(mainCluster === undefined ? {} : { mainCluster })
    await migrateMaster(t.pools)
    let now = 1_000_000
    const clock = {
      now: () => now,
      advance: (ms: number) => {
        now += ms
      },
    }
    const catalog = new TenantCatalog(() => t.pools, { clock, ...options })
    const add = async (id: string, status = 'active', cluster = 'main', movingTo: string | null = null) => {
      await t.pools.master.query(
        'INSERT INTO tenants (id, status, cluster, moving_to) VALUES ($1, $2, $3, $4)',
        [id, status, cluster, movingTo],
      )
    }
    const setStatus = (id: string, status: string) =>
      t.pools.master.query('UPDATE tenants SET status = $2 WHERE id = $1', [id, status])
    // Read around catalog calls only: the master writes above are checkouts too.
    const checkouts = () => t.pools.stats().counters.checkouts
    return { ...t, catalog, clock, add, setStatus, checkouts }
  }

  it("answers a known tenant's status, cluster and move target as its row holds them", async () => {
    const { catalog, add } = await world()
    const moving = uniqueTenant('cm')
    const settled = uniqueTenant('cs')
    await add(moving, 'suspended', 'c2', 'c3')
    await add(settled)

    await expect(catalog.placement(moving)).resolves.toEqual({
      status: 'suspended',
      cluster: 'c2',
      movingTo: 'c3',
    })
    await expect(catalog.placement(settled)).resolves.toEqual({
      status: 'active',
      cluster: 'main',
      movingTo: null,
    })
    await expect(catalog.status(moving)).resolves.toBe('suspended')
    await expect(catalog.status(settled)).resolves.toBe('active')
  })

  it("answers an unknown id as status unknown on the main cluster, by the registry's name for it", async () => {
    // Not 'main': the unknown placement must take the registry's name, not a literal.
    const { catalog } = await world({}, 'primary')
    const ghost = uniqueTenant('cg')
    await expect(catalog.placement(ghost)).resolves.toEqual({
      status: 'unknown',
      cluster: 'primary',
      movingTo: null,
    })
    expect(catalog.cached(ghost)).toEqual({ status: 'unknown', cluster: 'primary', movingTo: null })
    await expect(catalog.status(uniqueTenant('cg'))).resolves.toBe('unknown')
  })

  it('shares one pending look-up between concurrent callers, and cached() answers only once it is over', async () => {
    const { catalog, add, checkouts } = await world()
    const id = uniqueTenant('cp')
    await add(id)
    // Nothing known yet: cached() answers undefined rather than throwing or waiting.
    expect(catalog.cached(id)).toBeUndefined()

    const before = checkouts()
    const first = catalog.placement(id)
    const second = catalog.placement(id)
    expect(second).toBe(first)
    // Pending: the entry exists but holds no answer yet.
    expect(catalog.cached(id)).toBeUndefined()
    const placement = await first
    expect(checkouts() - before).toBe(1)
    // The very object the look-up resolved with, not a copy.
    expect(catalog.cached(id)).toBe(placement)
    expect(catalog.placement(id)).toBe(first)
    expect(checkouts() - before).toBe(1)
  })

  it('keeps a known tenant for ttlMs: fresh 1 ms before, looked up again at ttlMs', async () => {
    const { catalog, clock, add, setStatus, checkouts } = await world({ ttlMs: 10_000, unknownTtlMs: 100 })
    const id = uniqueTenant('ck')
    await add(id)
    const first = catalog.placement(id)
    const placement = await first
    await setStatus(id, 'suspended')

    const before = checkouts()
    // Far past unknownTtlMs: a known tenant's entry is not kept by the unknown ids' TTL.
    clock.advance(9_999)
    expect(catalog.cached(id)).toBe(placement)
    expect(catalog.placement(id)).toBe(first)
    expect(checkouts() - before).toBe(0)

    clock.advance(1)
    expect(catalog.cached(id)).toBeUndefined()
    await expect(catalog.placement(id)).resolves.toEqual({
      status: 'suspended',
      cluster: 'main',
      movingTo: null,
    })
    expect(checkouts() - before).toBe(1)
    // The new answer is kept from the time of its own look-up.
    clock.advance(9_999)
    expect(catalog.cached(id)?.status).toBe('suspended')
    clock.advance(1)
    expect(catalog.cached(id)).toBeUndefined()
  })

  it('keeps an unknown id for unknownTtlMs only, so a tenant provisioned meanwhile is soon served', async () => {
    const { catalog, clock, add, checkouts } = await world({ ttlMs: 10_000, unknownTtlMs: 500 })
    const id = uniqueTenant('cu')
    const first = catalog.placement(id)
    await expect(first).resolves.toMatchObject({ status: 'unknown' })
    await add(id)

    const before = checkouts()
    clock.advance(499)
    expect(catalog.cached(id)).toEqual({ status: 'unknown', cluster: 'main', movingTo: null })
    expect(catalog.placement(id)).toBe(first)
    expect(checkouts() - before).toBe(0)

    clock.advance(1)
    expect(catalog.cached(id)).toBeUndefined()
    await expect(catalog.placement(id)).resolves.toEqual({
      status: 'active',
      cluster: 'main',
      movingTo: null,
    })
    expect(checkouts() - before).toBe(1)
    // Known now: kept for ttlMs, not unknownTtlMs.
    clock.advance(9_999)
    expect(catalog.cached(id)?.status).toBe('active')
  })

  it('keeps a tenant 30 s and an unknown id 1 s by default', async () => {
    const { catalog, clock, add, checkouts } = await world()
    const known = uniqueTenant('cd')
    const ghost = uniqueTenant('cd')
    await add(known)
    await catalog.placement(known)
    await catalog.placement(ghost)

    const before = checkouts()
    clock.advance(999)
    expect(catalog.cached(ghost)?.status).toBe('unknown')
    clock.advance(1)
    expect(catalog.cached(ghost)).toBeUndefined()
    clock.advance(29_000 - 1)
    expect(catalog.cached(known)?.status).toBe('active')
    await catalog.placement(known)
    expect(checkouts() - before).toBe(0)
    clock.advance(1)
    expect(catalog.cached(known)).toBeUndefined()
    await catalog.placement(known)
    expect(checkouts() - before).toBe(1)
  })

  it('keeps its answers on the system clock when given none', async () => {
    const t = testPools()
    await migrateMaster(t.pools)
    const catalog = new TenantCatalog(() => t.pools)
    const id = uniqueTenant('cc')
    const before = t.pools.stats().counters.checkouts
    const placement = await catalog.placement(id)
    await catalog.placement(id)
    // Well within a second of the look-up, on any machine.
    expect(catalog.cached(id)).toBe(placement)
    expect(t.pools.stats().counters.checkouts - before).toBe(1)
  })

  it('forgets one tenant on invalidate() and every tenant on clear()', async () => {
    const { catalog, add, setStatus, checkouts } = await world()
    const a = uniqueTenant('ci')
    const b = uniqueTenant('ci')
    await add(a)
    await add(b)
    await catalog.placement(a)
    const placementB = await catalog.placement(b)
    await setStatus(a, 'suspended')
    await setStatus(b, 'deleted')

    const before = checkouts()
    catalog.invalidate(a)
    expect(catalog.cached(a)).toBeUndefined()
    // The other tenant's entry is untouched, stale as it is.
    expect(catalog.cached(b)).toBe(placementB)
    await expect(catalog.status(a)).resolves.toBe('suspended')
    expect(checkouts() - before).toBe(1)

    catalog.clear()
    expect(catalog.cached(a)).toBeUndefined()
    expect(catalog.cached(b)).toBeUndefined()
    await expect(catalog.status(b)).resolves.toBe('deleted')
    expect(checkouts() - before).toBe(2)
  })

  it('drops every entry when a new look-up finds maxEntries of them, and not before', async () => {
    const { catalog, add } = await world({ maxEntries: 2 })
    const [a, b, c] = [uniqueTenant('cx'), uniqueTenant('cx'), uniqueTenant('cx')]
    for (const id of [a, b, c]) await add(id)

    await catalog.placement(a)
    await catalog.placement(b)
    // Two entries, the second look-up found one: both kept.
    expect(catalog.cached(a)?.status).toBe('active')
    expect(catalog.cached(b)?.status).toBe('active')

    // The third finds two, the most it may keep: the cache starts afresh with it alone.
    await catalog.placement(c)
    expect(catalog.cached(a)).toBeUndefined()
    expect(catalog.cached(b)).toBeUndefined()
    expect(catalog.cached(c)?.status).toBe('active')
  })

  it('forgets a failed look-up at once: the next caller asks the database again', async () => {
    const { catalog, add, checkouts } = await world()
    const id = uniqueTenant('cf')
    await add(id)
    // A deadline already past fails the look-up, as an outage of the master would.
    const failed = catalog.placement(id, { deadline: 0 })
    // A concurrent caller shares the pending look-up, and its failure.
    expect(catalog.placement(id)).toBe(failed)
    await expect(failed).rejects.toBeInstanceOf(DeadlineExceededError)
    expect(catalog.cached(id)).toBeUndefined()

    const before = checkouts()
    await expect(catalog.placement(id)).resolves.toEqual({
      status: 'active',
      cluster: 'main',
      movingTo: null,
    })
    expect(checkouts() - before).toBe(1)
    expect(catalog.cached(id)?.status).toBe('active')
  })

  it('does not forget a newer look-up when an older one, invalidated meanwhile, fails', async () => {
    const { catalog, add, checkouts } = await world()
    const id = uniqueTenant('cn')
    await add(id)
    const failed = catalog.placement(id, { deadline: 0 })
    catalog.invalidate(id)
    const fresh = catalog.placement(id)
    expect(fresh).not.toBe(failed)
    await expect(failed).rejects.toBeInstanceOf(DeadlineExceededError)
    const placement = await fresh

    const before = checkouts()
    expect(catalog.cached(id)).toBe(placement)
    expect(catalog.placement(id)).toBe(fresh)
    expect(checkouts() - before).toBe(0)
  })

  it("warmUp() runs the look-up's statement once, for no tenant, and caches nothing", async () => {
    const { catalog, add, checkouts, pools } = await world()
    const id = uniqueTenant('cw')
    await add(id)
    const empty = uniqueTenant('ce')
    const seen: unknown[][] = []
    const query = pools.forMaster.bind(pools)
    pools.forMaster = (limits) => {
      const db = query(limits)
      return {
        ...db,
        query: (text: string, values?: unknown[]) => {
          seen.push([text, values])
          return db.query(text, values)
        },
      } as typeof db
    }

    const before = checkouts()
    await catalog.warmUp({ deadline: Date.now() + 1000 })

    // One statement, the look-up's own, with an id no tenant can have (an empty one)
    expect(checkouts() - before).toBe(1)
    expect(seen).toEqual([['SELECT status, cluster, moving_to FROM tenants WHERE id = $1', ['']]])
    // Nothing cached: the next look-ups of a tenant and of an unknown id each ask the database
    expect(catalog.cached(id)).toBeUndefined()
    expect(catalog.cached('')).toBeUndefined()
    await expect(catalog.status(id)).resolves.toBe('active')
    await expect(catalog.status(empty)).resolves.toBe('unknown')
    expect(checkouts() - before).toBe(3)
  })

  it('warmUp() rejects as the look-up would (a deadline past), and caches nothing', async () => {
    const { catalog } = await world()
    await expect(catalog.warmUp({ deadline: 0 })).rejects.toBeInstanceOf(DeadlineExceededError)
    expect(catalog.cached('')).toBeUndefined()
  })
})
