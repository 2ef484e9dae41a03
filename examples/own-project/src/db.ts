// The registry (one per execution environment, from the environment variables) and the catalog
// that tells which tenants exist, shared by every handler and by the set-up script.
import type { Generated } from 'kysely'
import { getTenantPools, TenantCatalog } from 'tenant-pools'

export const pools = getTenantPools
export const catalog = new TenantCatalog(pools)

/** Each tenant schema's tables, as Kysely sees them. */
export interface Database {
  notes: { id: Generated<number>; body: string }
}
