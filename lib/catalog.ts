// The tenant catalog (master schema), read through a short in-memory cache. Unknown ids are cached
// too, so a stream of random tenant ids cannot hammer the master database.
import type { TenantPools } from './tenant-pools'
import type { Clock } from './types'

export type TenantStatus = 'active' | 'suspended' | 'deleted' | 'unknown'

const defaults = { ttlMs: 30_000, maxEntries: 10_000 }

export interface TenantCatalogOptions {
  ttlMs?: number
  maxEntries?: number
  clock?: Clock
}

export class TenantCatalog {
  readonly #pools: () => TenantPools
  readonly #ttlMs: number
  readonly #maxEntries: number
  readonly #clock: Clock
  // Pending lookups are cached too: concurrent requests for one tenant make one query.
  readonly #entries = new Map<string, { status: Promise<TenantStatus>; at: number }>()

  constructor(pools: () => TenantPools, options: TenantCatalogOptions = {}) {
    const o = { ...defaults, ...options }
    this.#pools = pools
    this.#ttlMs = o.ttlMs
    this.#maxEntries = o.maxEntries
    this.#clock = o.clock ?? { now: () => Date.now() }
  }

  /** The tenant's status; the id must already be validated. */
  status(tenantId: string): Promise<TenantStatus> {
    const now = this.#clock.now()
    const hit = this.#entries.get(tenantId)
    if (hit && now - hit.at < this.#ttlMs) return hit.status
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear()
    const status = this.#pools()
      .master.query<{ status: TenantStatus }>('SELECT status FROM tenants WHERE id = $1', [tenantId])
      .then(({ rows }) => rows[0]?.status ?? 'unknown')
    const entry = { status, at: now }
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
