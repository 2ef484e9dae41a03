// A tenant's database where the catalog places it, robust to a placement that changed meanwhile: a
// move in another environment, or in this one while the call was on its way. The old copy is
// fenced (fence.ts) and then removed, so a call that reached it fails without effect; the catalog
// entry is then looked up afresh, and a call that can be repeated safely is run on the new cluster.

import type { TenantDb } from '../adapters/pg-pool'
import { TenantMovingError } from '../errors'
import type { TenantPools } from '../registry/tenant-pools'
import { INVALID_SCHEMA_NAME, sqlState, TENANT_FENCED, UNDEFINED_TABLE } from '../sqlstate'
import type { CallLimits } from '../types'
import type { TenantCatalog, TenantPlacement } from './catalog'

/**
 * What placedDb() needs: the registry, the catalog, the tenant, the placement the catalog gave for
 * this request, and the request's limits (`readOnly` for its reader).
 *
 * @example
 * const db = placedDb({ pools, catalog, tenantId: 'acme', placement: await catalog.placement('acme'), limits: { deadline } })
 */
export interface PlacedDbOptions {
  pools: TenantPools
  catalog: TenantCatalog
  tenantId: string
  /** The placement the catalog gave for this request. */
  placement: TenantPlacement
  limits: CallLimits
  readOnly?: boolean
}

// What a call that met the old copy of a moved tenant sees: the fence, or its schema gone.
const MISPLACED = new Set([TENANT_FENCED, UNDEFINED_TABLE, INVALID_SCHEMA_NAME])

/**
 * `query` and `transaction` are run again, once, on the tenant's new cluster: what failed there
 * changed nothing (the fence refuses a write before it touches a row; a transaction that failed
 * rolled back). `withClient` is not: its earlier statements may have committed. A tenant still
 * moving gets TenantMovingError (503 with Retry-After over HTTP).
 *
 * @example
 * const placement = await catalog.placement('acme', { deadline })
 * const db = placedDb({ pools: getTenantPools(), catalog, tenantId: 'acme', placement, limits: { deadline } })
 * await db.query('UPDATE orders SET status = $1 WHERE id = $2', ['paid', id]) // sent on after a move
 */
export function placedDb(o: PlacedDbOptions): TenantDb {
  let placement = o.placement
  const dbOf = (p: TenantPlacement) =>
    o.pools.forTenant(o.tenantId, { ...o.limits, cluster: p.cluster, readOnly: o.readOnly })
  let db = dbOf(placement)

  // After a misplaced call: where the tenant is now, or the error to throw.
  const relocate = async (err: unknown, repeatable: boolean): Promise<TenantDb> => {
    if (!MISPLACED.has(sqlState(err) ?? '')) throw err
    o.catalog.invalidate(o.tenantId)
    const fresh = await o.catalog.placement(o.tenantId, o.limits)
    const moved = fresh.cluster !== placement.cluster && fresh.status === 'active'
    if (moved && fresh.movingTo === null && repeatable) {
      placement = fresh
      db = dbOf(fresh)
      return db
    }
    if (fresh.movingTo !== null || sqlState(err) === TENANT_FENCED || moved) {
      throw new TenantMovingError(`Tenant ${o.tenantId} is being moved to another cluster`, { cause: err })
    }
    throw err
  }

  return {
    query: async (text, values) => {
      try {
        return await db.query(text, values)
      } catch (err) {
        return (await relocate(err, true)).query(text, values)
      }
    },
    transaction: async (fn) => {
      try {
        return await db.transaction(fn)
      } catch (err) {
        return (await relocate(err, true)).transaction(fn)
      }
    },
    withClient: async (fn) => {
      try {
        return await db.withClient(fn)
      } catch (err) {
        await relocate(err, false)
        throw err
      }
    },
    // The pool of the tenant's placement as it stands (a move seen by an earlier call included). Its
    // calls are not sent on after a move: pg's callers hold connections and run statements the
    // retry could not tell apart; one that meets the fence fails, as withClient's do.
    asPgPool: () => db.asPgPool(),
  }
}
