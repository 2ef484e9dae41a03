// The tenant catalog (master schema), read through a short in-memory cache. Unknown ids are cached
// too, so a stream of random tenant ids cannot hammer the master database.
import type { TenantPools } from '../registry/tenant-pools'
import type { CallLimits, Clock } from '../types'

export type TenantStatus = 'active' | 'suspended' | 'deleted' | 'unknown'

/** A tenant's status and where it lives. */
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

export interface TenantCatalogOptions {
  ttlMs?: number
  unknownTtlMs?: number
  maxEntries?: number
  clock?: Clock
}

export class TenantCatalog {
  readonly #pools: () => TenantPools
  readonly #ttlMs: number
  readonly #unknownTtlMs: number
  readonly #maxEntries: number
  readonly #clock: Clock
  // Pending lookups are cached too: concurrent requests for one tenant make one query.
  readonly #entries = new Map<string, { placement: Promise<TenantPlacement>; at: number; ttl: number }>()

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
   */
  async status(tenantId: string, limits: CallLimits = {}): Promise<TenantStatus> {
    return (await this.placement(tenantId, limits)).status
  }

  /**
   * The tenant's status and cluster, as `status`. A cached placement can be stale (a move flipped it
   * in another environment): the old copy is fenced at the database, and a caller that meets the
   * fence invalidates the entry and looks again.
   */
  placement(tenantId: string, limits: CallLimits = {}): Promise<TenantPlacement> {
    const now = this.#clock.now()
    const hit = this.#entries.get(tenantId)
    if (hit && now - hit.at < hit.ttl) return hit.placement
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear()
    const pools = this.#pools()
    const entry = { placement: Promise.resolve(unknown(pools.mainCluster)), at: now, ttl: this.#ttlMs }
    entry.placement = pools
      .forMaster(limits)
      .query<{ status: TenantStatus; cluster: string; moving_to: string | null }>(
        'SELECT status, cluster, moving_to FROM tenants WHERE id = $1',
        [tenantId],
      )
      .then(({ rows }) => {
        const row = rows[0]
        if (!row) {
          entry.ttl = this.#unknownTtlMs
          return unknown(pools.mainCluster)
        }
        return { status: row.status, cluster: row.cluster, movingTo: row.moving_to }
      })
    const placement = entry.placement
    this.#entries.set(tenantId, entry)
    placement.catch(() => {
      if (this.#entries.get(tenantId) === entry) this.#entries.delete(tenantId)
    })
    return placement
  }

  /** Forgets a tenant (after it was provisioned, suspended or deleted in this environment). */
  invalidate(tenantId: string): void {
    this.#entries.delete(tenantId)
  }

  clear(): void {
    this.#entries.clear()
  }
}

const unknown = (cluster: string): TenantPlacement => ({ status: 'unknown', cluster, movingTo: null })
