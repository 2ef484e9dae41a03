// A tenant's database where the catalog places it, robust to a placement that changed meanwhile: a
// move in another environment, or in this one while the call was on its way. The old copy is
// fenced (fence.ts) and then removed, so a call that reached it fails without effect; the catalog
// entry is then looked up afresh, and a call that can be repeated safely is run on the new cluster.

import type { ClientBase, QueryResult, QueryResultRow } from 'pg'
import type { TenantDb, TenantPgPool } from '../adapters/pg-pool'
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
 * A tenant's database at its placement, which also knows how many of its calls are still running
 * (`inFlight`, `settled()`): what the tenantDb middleware waits for before it answers.
 *
 * @example
 * const db = placedDb({ pools, catalog, tenantId: 'acme', placement, limits: { deadline } })
 * void db.query('UPDATE orders SET seen = true') // not awaited by mistake
 * await db.settled() // it is over now, one way or the other
 */
export class PlacedDb implements TenantDb {
  readonly #o: PlacedDbOptions
  #placement: TenantPlacement
  // The registry's handle, made on first use: a request's reader may never be used.
  #db: TenantDb | undefined
  #inFlight = 0
  #waiting: Array<() => void> = []

  constructor(options: PlacedDbOptions) {
    this.#o = options
    this.#placement = options.placement
  }

  /** How many calls of this database have begun and not yet ended. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** Resolves once no call of this database is running (at once if none is). */
  async settled(): Promise<void> {
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#waiting.push(resolve))
  }

  // One promise past the registry's: it counts the call's end, and sends a misplaced one on.
  query<R extends QueryResultRow = QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    return this.#run((db) => db.query<R>(text, values), true)
  }

  transaction<T>(fn: (client: ClientBase) => Promise<T>): Promise<T> {
    return this.#run((db) => db.transaction<T>(fn), true)
  }

  // Not sent on: its earlier statements may have committed.
  withClient<T>(fn: (client: ClientBase) => Promise<T>): Promise<T> {
    return this.#run((db) => db.withClient<T>(fn), false)
  }

  // The pool of the tenant's placement as it stands (a move seen by an earlier call included). Its
  // calls are not sent on after a move: pg's callers hold connections and run statements the
  // retry could not tell apart; one that meets the fence fails, as withClient's do.
  asPgPool(): TenantPgPool {
    return this.#current().asPgPool()
  }

  #run<T>(call: (db: TenantDb) => Promise<T>, repeatable: boolean): Promise<T> {
    this.#inFlight++
    // Where this call went: calls running at once may each meet the old copy, and the first to
    // look again moves the placement before the others do.
    const ranOn = this.#placement
    let running: Promise<T>
    try {
      running = call(this.#current())
    } catch (err) {
      running = Promise.reject(err)
    }
    return running.then(this.#ended, (err: unknown) => this.#sendOn(err, call, repeatable, ranOn))
  }

  // A field, so that the warm path allocates no closure per call.
  readonly #ended = <T>(result: T): T => {
    this.#callEnded()
    return result
  }

  #callEnded(): void {
    this.#inFlight--
    if (this.#inFlight === 0 && this.#waiting.length > 0) {
      for (const resolve of this.#waiting.splice(0)) resolve()
    }
  }

  async #sendOn<T>(
    err: unknown,
    call: (db: TenantDb) => Promise<T>,
    repeatable: boolean,
    ranOn: TenantPlacement,
  ): Promise<T> {
    try {
      return await call(await this.#relocated(err, repeatable, ranOn))
    } finally {
      this.#callEnded()
    }
  }

  #current(): TenantDb {
    this.#db ??= this.#o.pools.forTenant(this.#o.tenantId, {
      ...this.#o.limits,
      cluster: this.#placement.cluster,
      readOnly: this.#o.readOnly,
    })
    return this.#db
  }

  // After a call misplaced on `ranOn`: where the tenant is now, or the error to throw.
  async #relocated(err: unknown, repeatable: boolean, ranOn: TenantPlacement): Promise<TenantDb> {
    const o = this.#o
    if (!MISPLACED.has(sqlState(err) ?? '')) throw err
    o.catalog.invalidate(o.tenantId)
    const fresh = await o.catalog.placement(o.tenantId, o.limits)
    const moved = fresh.cluster !== ranOn.cluster && fresh.status === 'active'
    if (moved && fresh.movingTo === null && repeatable) {
      this.#placement = fresh
      this.#db = undefined
      return this.#current()
    }
    if (fresh.movingTo !== null || sqlState(err) === TENANT_FENCED || moved) {
      throw new TenantMovingError(`Tenant ${o.tenantId} is being moved to another cluster`, { cause: err })
    }
    throw err
  }
}

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
export const placedDb = (options: PlacedDbOptions): PlacedDb => new PlacedDb(options)
