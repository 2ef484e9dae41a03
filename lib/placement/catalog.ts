// The tenant catalog (master schema), read through a short in-memory cache. Unknown ids are cached
// too, so a stream of random tenant ids cannot hammer the master database.
import type { TenantPools } from '../registry/tenant-pools'
import type { CallLimits, Clock } from '../types'

/**
 * A tenant's status in the catalog; `unknown` for an id the catalog does not hold.
 *
 * @example
 * const status: TenantStatus = await catalog.status('acme')
 * if (status !== 'active') throw new HttpError(404, 'TENANT_NOT_FOUND', 'Unknown tenant')
 */
export type TenantStatus = 'active' | 'suspended' | 'deleted' | 'unknown'

/**
 * A tenant's status and where it lives.
 *
 * @example
 * const { status, cluster } = await catalog.placement('acme')
 * if (status === 'active') await pools.forTenant('acme', { cluster }).query('SELECT 1')
 */
export interface TenantPlacement {
  status: TenantStatus
  /** The cluster holding its schema (the main one for an unknown tenant). */
  cluster: string
  /** The cluster it is being moved to, while a move is under way. */
  movingTo: string | null
}

// Unknown ids are cached briefly: long enough to absorb a stream of random ids, short enough that a
// tenant provisioned elsewhere is served within a second.
const defaults = { ttlMs: 30_000, unknownTtlMs: 1_000, maxEntries: 10_000 }

const LOOK_UP_SQL = 'SELECT status, cluster, moving_to FROM tenants WHERE id = $1'

/**
 * How long the catalog keeps a tenant's placement (`ttlMs`, 30 s) and an unknown id's
 * (`unknownTtlMs`, 1 s), and how many entries it keeps (`maxEntries`, 10,000).
 *
 * @example
 * const catalog = new TenantCatalog(getTenantPools, { ttlMs: 10_000, unknownTtlMs: 500 })
 */
export interface TenantCatalogOptions {
  ttlMs?: number
  unknownTtlMs?: number
  maxEntries?: number
  clock?: Clock
}

/**
 * The tenant catalog (`tenants` in the master schema), cached per environment: each tenant's status
 * and cluster. Pending look-ups are shared, failed ones forgotten, unknown ids cached briefly so
 * that a stream of random ids cannot hammer the master database.
 *
 * @example
 * const catalog = new TenantCatalog(getTenantPools) // at module level: kept across warm invocations
 * const { status, cluster } = await catalog.placement('acme', { deadline })
 */
export class TenantCatalog {
  readonly #pools: () => TenantPools
  readonly #ttlMs: number
  readonly #unknownTtlMs: number
  readonly #maxEntries: number
  readonly #clock: Clock
  // Pending lookups are cached too: concurrent requests for one tenant make one query.
  readonly #entries = new Map<string, Entry>()

  constructor(pools: () => TenantPools, options: TenantCatalogOptions = {}) {
    const o = { ...defaults, ...options }
    this.#pools = pools
    this.#ttlMs = o.ttlMs
    this.#unknownTtlMs = o.unknownTtlMs
    this.#maxEntries = o.maxEntries
    this.#clock = o.clock ?? { now: () => Date.now() }
  }

  /**
   * The tenant's status; the id must already be validated. `limits` bound the look-up when it is not
   * cached (a concurrent caller for the same tenant shares it, and its limits). A failed look-up is
   * forgotten at once, so an outage lasts no longer here than at the database.
   *
   * @example
   * if ((await catalog.status('acme')) === 'suspended') throw new HttpError(403, 'TENANT_SUSPENDED', 'Suspended')
   */
  async status(tenantId: string, limits: CallLimits = {}): Promise<TenantStatus> {
    return (await this.placement(tenantId, limits)).status
  }

  /**
   * The tenant's status and cluster, as `status`. A cached placement can be stale (a move flipped it
   * in another environment): the old copy is fenced at the database, and a caller that meets the
   * fence invalidates the entry and looks again.
   *
   * @example
   * const { status, cluster, movingTo } = await catalog.placement('acme', { deadline })
   */
  placement(tenantId: string, limits: CallLimits = {}): Promise<TenantPlacement> {
    const now = this.#clock.now()
    const hit = this.#entries.get(tenantId)
    if (hit && now - hit.at < hit.ttl) return hit.placement
    return this.#lookUp(tenantId, limits, now)
  }

  /**
   * The tenant's placement if the cache holds a fresh answer for it, without waiting; otherwise
   * undefined (then `placement()` looks it up). For a caller whose warm path must not wait a
   * microtask, as the tenantDb middleware's.
   *
   * @example
   * const placement = catalog.cached('acme') ?? (await catalog.placement('acme', { deadline }))
   */
  cached(tenantId: string): TenantPlacement | undefined {
    const hit = this.#entries.get(tenantId)
    if (hit?.value === undefined || this.#clock.now() - hit.at >= hit.ttl) return undefined
    return hit.value
  }

  #lookUp(tenantId: string, limits: CallLimits, now: number): Promise<TenantPlacement> {
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear()
    const pools = this.#pools()
    const entry: Entry = { placement: Promise.resolve(unknown(pools.mainCluster)), at: now, ttl: this.#ttlMs }
    entry.placement = pools
      .forMaster(limits)
      .query<{ status: TenantStatus; cluster: string; moving_to: string | null }>(LOOK_UP_SQL, [tenantId])
      .then(({ rows }) => {
        const row = rows[0]
        if (!row) entry.ttl = this.#unknownTtlMs
        entry.value = row
          ? { status: row.status, cluster: row.cluster, movingTo: row.moving_to }
          : unknown(pools.mainCluster)
        return entry.value
      })
    const placement = entry.placement
    this.#entries.set(tenantId, entry)
    placement.catch(() => {
      if (this.#entries.get(tenantId) === entry) this.#entries.delete(tenantId)
    })
    return placement
  }

  /**
   * Runs the look-up's statement for an id no tenant has (the empty one, which no valid id is) and
   * caches nothing: its code is compiled, and the catalog table read into the master connection's
   * backend, before the first request looks a tenant up. For `prewarm()`'s warm-up; it reads no
   * tenant's row.
   *
   * @example
   * getTenantPools().prewarm({ warmUp: (limits) => catalog.warmUp(limits) })
   */
  async warmUp(limits: CallLimits = {}): Promise<void> {
    await this.#pools().forMaster(limits).query(LOOK_UP_SQL, [''])
  }

  /**
   * Forgets a tenant (after it was provisioned, suspended or deleted in this environment).
   *
   * @example
   * await pools.master.query("UPDATE tenants SET status = 'suspended' WHERE id = $1", ['acme'])
   * catalog.invalidate('acme') // this environment sees it at once; others within ttlMs
   */
  invalidate(tenantId: string): void {
    this.#entries.delete(tenantId)
  }

  /**
   * Forgets every tenant (for tests).
   *
   * @example
   * afterEach(() => catalog.clear())
   */
  clear(): void {
    this.#entries.clear()
  }
}

// A look-up, pending (`value` unset) or answered.
interface Entry {
  placement: Promise<TenantPlacement>
  value?: TenantPlacement
  at: number
  ttl: number
}

const unknown = (cluster: string): TenantPlacement => ({ status: 'unknown', cluster, movingTo: null })
