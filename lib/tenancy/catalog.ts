// The tenant catalog (master schema), read through a short in-memory cache. Unknown ids are cached
// too, so a stream of random tenant ids cannot hammer the master database.
import type { TenantPools } from '../registry/tenant-pools'
import type { CallLimits, Clock } from '../types'

export type TenantStatus = 'active' | 'suspended' | 'deleted' | 'unknown'

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
  readonly #entries = new Map<string, { status: Promise<TenantStatus>; at: number; ttl: number }>()

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
  status(tenantId: string, limits: CallLimits = {}): Promise<TenantStatus> {
    const now = this.#clock.now()
    const hit = this.#entries.get(tenantId)
    if (hit && now - hit.at < hit.ttl) return hit.status
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear()
    const entry = { status: Promise.resolve<TenantStatus>('unknown'), at: now, ttl: this.#ttlMs }
    entry.status = this.#pools()
      .forMaster(limits)
      .query<{ status: TenantStatus }>('SELECT status FROM tenants WHERE id = $1', [tenantId])
      .then(({ rows }) => {
        const status = rows[0]?.status ?? 'unknown'
        if (status === 'unknown') entry.ttl = this.#unknownTtlMs
        return status
      })
    const status = entry.status
    this.#entries.set(tenantId, entry)
    status.catch(() => {
      if (this.#entries.get(tenantId) === entry) this.#entries.delete(tenantId)
    })
    return status
  }

  /** Forgets a tenant (after it was provisioned, suspended or deleted in this environment). */
  invalidate(tenantId: string): void {
    this.#entries.delete(tenantId)
  }

  clear(): void {
    this.#entries.clear()
  }
}
