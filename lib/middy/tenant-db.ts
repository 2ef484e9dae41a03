// middy middleware: resolves the request's tenant, checks the catalog, and gives the handler
// `context.tenant` and a lazy `context.db` (no connection is taken unless the handler uses it).
import type { MiddlewareObj, Request } from '@middy/core'
import type { APIGatewayProxyEventV2WithJWTAuthorizer, Context } from 'aws-lambda'
import type { ClientBase, QueryResult, QueryResultRow } from 'pg'
import type { TenantDb, TenantPgPool } from '../adapters/pg-pool'
import { runtimeFromEnv, trustHeaderFromEnv } from '../config/env'
import { HttpError, InvalidOptionsError } from '../errors'
import type { TenantCatalog, TenantPlacement, TenantStatus } from '../placement/catalog'
import { type PlacedDb, placedDb } from '../placement/placed-db'
import type { TenantPools } from '../registry/tenant-pools'
import { assertTenantId } from '../tenancy/tenant-id'
import { type CallLimits, type CallMeasure, newCallMeasure } from '../types'

const defaults = {
  claim: 'tenant_id',
  header: 'x-tenant-id',
  // Kept back from the invocation's remaining time: enough to map the error and answer before Lambda
  // times the invocation out (a timeout bills in full, answers API Gateway's bare 503, and resets
  // the environment).
  deadlineMarginMs: 1_000,
}

/**
 * Trusting a header for the tenant is for a stack without an authorizer: serverless-offline, the
 * `local` stage (TENANT_POOLS_STAGE, set from the serverless stage), or code run outside Lambda (a
 * test, a script). In a deployed function it would let any caller name any tenant: the function
 * refuses to start, naming the variable.
 */
export function assertHeaderTrustAllowed(env: NodeJS.ProcessEnv = process.env): void {
  const { inLambda, offline, stage } = runtimeFromEnv(env)
  if (!inLambda || offline || stage === 'local') return
  throw new InvalidOptionsError(
    `TENANT_POOLS_TRUST_TENANT_HEADER (or tenantDb's trustHeader) is true in stage ${stage ?? '(unset)'}: ` +
      'a tenant header is trusted only under serverless-offline or in the local stage. Remove it.',
  )
}

/**
 * What a handler behind tenantDb() gets on its context: the request's tenant, its database (`db`,
 * `readDb`, `pgPool`) with the invocation's deadline, and what the request's calls did.
 *
 * @example
 * .handler(async (_event, context: TenantContext) => {
 *   const { rows } = await context.db.query('SELECT * FROM orders WHERE status = $1', ['paid'])
 *   return jsonResponse(200, { tenant: context.tenant.id, orders: rows })
 * })
 */
export interface TenantContext extends Context {
  tenant: { id: string; status: TenantStatus; cluster: string }
  db: TenantDb
  /**
   * The tenant's database, read-only: served by its cluster's reader (a replica) when there is one.
   * It may lag the writer: a row written by this request may not be there yet.
   */
  readDb: TenantDb
  /**
   * The tenant's database as a `pg.Pool` (for Kysely, Drizzle …), made on first use, with this
   * request's deadline. A connection from its `connect()` still held when the handler has answered
   * is destroyed.
   */
  readonly pgPool: TenantPgPool
  /** What this request's calls (the catalog look-up included) did to the pools. */
  dbMeasure: CallMeasure
}

/**
 * tenantDb()'s options: `pools`, the registry (a function: it is built on first use), and the
 * catalog; the tenant comes from the JWT's `claim` (`tenant_id`), or from `header` (`x-tenant-id`)
 * only where `trustHeader` is allowed.
 *
 * @example
 * const options: TenantDbOptions = { pools: getTenantPools, catalog: new TenantCatalog(getTenantPools), claim: 'org' }
 */
export interface TenantDbOptions {
  pools: () => TenantPools
  catalog: TenantCatalog
  claim?: string
  header?: string
  trustHeader?: boolean
  /** Milliseconds kept back from `context.getRemainingTimeInMillis()` to answer in. */
  deadlineMarginMs?: number
}

/**
 * When this invocation's database work must be over: its remaining time less the margin. Undefined
 * for a context without a clock (a test, a direct call).
 *
 * @example
 * const deadline = invocationDeadline(context, 1_000) // 1 s kept back to answer in
 * await pools.query('acme', 'SELECT 1', [], { deadline })
 */
export function invocationDeadline(
  context: Partial<Context>,
  marginMs: number,
  now = Date.now(),
): number | undefined {
  const remaining = context.getRemainingTimeInMillis?.()
  if (typeof remaining !== 'number' || !Number.isFinite(remaining)) return undefined
  return now + remaining - marginMs
}

type TenantRequest = Request<APIGatewayProxyEventV2WithJWTAuthorizer, unknown, Error, TenantContext>

// A request's database as its handler sees it: the placed database's calls (each counted until it
// ends, so that none outlives the handler), and its pg.Pool, made once and reclaimed at the end.
class RequestDb implements TenantDb {
  readonly placed: PlacedDb
  #pgPool: TenantPgPool | undefined

  constructor(placed: PlacedDb) {
    this.placed = placed
  }

  query<R extends QueryResultRow = QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    return this.placed.query<R>(text, values)
  }

  withClient<T>(fn: (client: ClientBase) => Promise<T>): Promise<T> {
    return this.placed.withClient(fn)
  }

  transaction<T>(fn: (client: ClientBase) => Promise<T>): Promise<T> {
    return this.placed.transaction(fn)
  }

  asPgPool(): TenantPgPool {
    this.#pgPool ??= this.placed.asPgPool()
    return this.#pgPool
  }

  // Connections of its pg.Pool still held: destroyed. How many there were.
  reclaim(): number {
    return this.#pgPool?.reclaim() ?? 0
  }
}

// Until no call of the request's databases runs: a call may start another as it ends.
async function settled(dbs: RequestDb[]): Promise<void> {
  while (dbs.some((db) => db.placed.inFlight > 0)) await Promise.all(dbs.map((db) => db.placed.settled()))
}

// Connections of the request's pg.Pools still held are destroyed, and the request fails.
function reclaim(dbs: RequestDb[]): void {
  const reclaimed = dbs.reduce((n, db) => n + db.reclaim(), 0)
  if (reclaimed > 0) {
    throw new Error(`${reclaimed} connection(s) from context.pgPool.connect() were not released`)
  }
}

/**
 * middy middleware: resolves the request's tenant (the JWT claim), checks it in the catalog (401
 * without one, 404 unknown, 403 suspended), and gives the handler `context.tenant` and its lazy
 * database. Whatever the handler did, every call it started is settled before the answer, and a
 * connection it still holds is destroyed.
 *
 * @example
 * export const handler = middy<Event, Result, Error, TenantContext>()
 *   .use(httpErrors({ logger }))
 *   .use(tenantDb({ pools: getTenantPools, catalog }))
 *   .handler(async (_event, context) => jsonResponse(200, (await context.db.query('SELECT * FROM orders')).rows))
 */
export function tenantDb(
  options: TenantDbOptions,
): MiddlewareObj<APIGatewayProxyEventV2WithJWTAuthorizer, unknown, Error, TenantContext> {
  const config = {
    ...defaults,
    ...options,
    // Read when the middleware is built, not when this module loads.
    trustHeader: options.trustHeader ?? trustHeaderFromEnv(process.env),
  }
  if (config.trustHeader) assertHeaderTrustAllowed()
  // Where a request's databases are kept for its end: on its context, under a key of this
  // middleware's own (a WeakMap's entries cost the warm path more, and the collector an ephemeron
  // each).
  const requestDbs = Symbol('tenantDb: the request’s databases')
  type RequestContext = TenantContext & { [requestDbs]?: RequestDb[] }
  // context.pgPool, made on first use from the request's writer. One getter for every request: a
  // closure of each request's own would give each context a hidden class of its own, which cost a
  // warm request 3 µs (npm run bench:handler).
  const pgPool: PropertyDescriptor = {
    configurable: true,
    get(this: RequestContext): TenantPgPool | undefined {
      return this[requestDbs]?.[0]?.asPgPool()
    },
  }

  // Gives the handler its tenant and databases once the placement is known.
  const bind = (
    context: TenantContext,
    pools: TenantPools,
    tenantId: string,
    placement: TenantPlacement,
    limits: CallLimits,
  ) => {
    const { status } = placement
    if (status === 'unknown' || status === 'deleted') {
      throw new HttpError(404, 'TENANT_NOT_FOUND', 'Unknown tenant')
    }
    if (status === 'suspended') throw new HttpError(403, 'TENANT_SUSPENDED', 'This tenant is suspended')
    const { catalog } = config
    const placed = (readOnly: boolean) =>
      new RequestDb(placedDb({ pools, catalog, tenantId, placement, limits, readOnly }))
    const writer = placed(false)
    const reader = placed(true)
    context.tenant = { id: tenantId, status, cluster: placement.cluster }
    context.db = writer
    context.readDb = reader
    ;(context as RequestContext)[requestDbs] = [writer, reader]
    Object.defineProperty(context, 'pgPool', pgPool)
  }

  // Not an async function: with the placement cached (the warm path), it returns without a promise
  // and middy goes on without a microtask hop.
  const tenantDbBefore = (request: TenantRequest): Promise<void> | undefined => {
    const { event, context } = request
    const pools = config.pools()
    pools.invocationStarted()
    // A request that carries a JWT names its tenant by its claim, or not at all: a header never
    // stands in for a missing claim. (serverless-offline gives every request a `jwt`, with no
    // claims when no token came.)
    const claims = event.requestContext?.authorizer?.jwt?.claims
    const tenantId = claims
      ? claims[config.claim]
      : config.trustHeader
        ? event.headers?.[config.header]
        : undefined
    if (tenantId === undefined || tenantId === '') {
      throw new HttpError(401, 'TENANT_REQUIRED', 'No tenant: the request carries no tenant_id claim')
    }
    assertTenantId(tenantId)
    // One budget for the catalog look-up and every statement of the handler.
    const measure = newCallMeasure()
    const limits: CallLimits = { deadline: invocationDeadline(context, config.deadlineMarginMs), measure }
    context.dbMeasure = measure
    const cached = config.catalog.cached(tenantId)
    if (cached !== undefined) {
      bind(context, pools, tenantId, cached, limits)
      return undefined
    }
    return config.catalog.placement(tenantId, limits).then((placement) => {
      bind(context, pools, tenantId, placement, limits)
    })
  }

  // Whatever the handler did, nothing it started may still hold a connection when we answer: the
  // environment may be frozen right after. Not an async function either: with no call of the
  // request still running, it returns without a promise.
  const tenantDbRelease = (request: TenantRequest): Promise<void> | undefined => {
    const dbs = (request.context as RequestContext)[requestDbs]
    if (dbs === undefined) return undefined
    if (dbs.some((db) => db.placed.inFlight > 0)) return settled(dbs).then(() => reclaim(dbs))
    reclaim(dbs)
    return undefined
  }

  return { before: tenantDbBefore, after: tenantDbRelease, onError: tenantDbRelease }
}
