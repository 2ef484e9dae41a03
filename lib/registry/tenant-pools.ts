// The registry: tenant scopes (`tenantId[:app]`, plus the master schema) are the logical unit, with
// a per-scope limit, stats, LRU and TTL. Physical connections belong to logins (endpoint, database,
// user) and are rebound between the scopes of a login, all within one per-environment budget. Built
// once per execution environment and kept across warm invocations.
// This file is the public API and the wiring. The work is done by:
//   scope-table.ts  the scopes in use: LRU, TTL, evict, sweep
//   logins.ts       each scope's login, the login pools, their clusters
//   checkout.ts     a live, clean connection for a call: take, wait, hand over, leak watch
//   calls.ts        query, withClient, transaction, leases: client-side timeouts, retries, release
//   readers.ts      reader routing and the fallback to the writer
//   ../pool/readiness.ts  settle, ping, reset, rebind: the only writer of a session's state
//   context.ts      what they share: options, log, counters, the invocation count, the end
import { Logger } from '@aws-lambda-powertools/logger'
import type { ClientBase, QueryResult, QueryResultRow } from 'pg'
import { type TenantDb, TenantPgPool } from '../adapters/pg-pool'
import { PREWARM_MAX_TIMEOUT_MS, PREWARM_TIMEOUT_MS } from '../config/defaults'
import { resolveOptions, type TenantPoolsOptions } from '../config/options'
import { TenantPoolsError } from '../errors'
import { ConnectionBudget } from '../pool/budget'
import { Readiness } from '../pool/readiness'
import { sqlState } from '../sqlstate'
import type { CallLimits, PrewarmOptions, PrewarmOutcome, Scope, ScopeOptions } from '../types'
import { Calls } from './calls'
import { Checkout } from './checkout'
import { RegistryContext } from './context'
import { Logins } from './logins'
import { Readers } from './readers'
import { ScopeTable } from './scope-table'
import { MASTER_KEY, ValidatedScopes } from './scopes'
import { type Counters, reported, statsOf, type TenantPoolsStats } from './stats'

export { MASTER_KEY } from './scopes'
export type {
  ClusterStats,
  ConnectionStats,
  Counters,
  LoginStats,
  PoolStats,
  ScopeStats,
  TenantPoolsStats,
} from './stats'

/**
 * The registry: each tenant's (and the master schema's) connections, within one budget per
 * execution environment, built once and kept across warm invocations. Most code uses the module-
 * level one, getTenantPools().
 *
 * @example
 * const pools = new TenantPools({ connectionString: process.env.DATABASE_URL, maxPerScope: 2 })
 * const { rows } = await pools.query('acme', 'SELECT * FROM orders WHERE id = $1', [id])
 * await pools.end()
 */
export class TenantPools {
  /** The master/catalog schema's database. */
  readonly master: TenantDb
  readonly #ctx: RegistryContext
  readonly #budget: ConnectionBudget
  readonly #logins: Logins
  readonly #table: ScopeTable
  readonly #calls: Calls
  readonly #checkout: Checkout
  readonly #validated: ValidatedScopes
  readonly #sweepTimer: NodeJS.Timeout
  #ending: Promise<void> | undefined

  constructor(options: TenantPoolsOptions = {}) {
    const o = resolveOptions(options)
    const ctx = new RegistryContext(o, o.logger ?? new Logger({ serviceName: 'tenant-pools' }))
    this.#ctx = ctx
    this.#budget = new ConnectionBudget(
      o.budget,
      () => this.#logins.freeIdleSlot(),
      () => o.clock.now(),
    )
    this.#logins = new Logins(ctx, options, this.#budget, async (role) => {
      const { rowCount } = await this.master.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])
      return (rowCount ?? 0) > 0
    })
    const shapes = new Map(
      [...this.#logins.clusters.values()].map((c) => [
        c.name,
        { name: c.name, hasReader: c.reader !== undefined },
      ]),
    )
    this.#validated = new ValidatedScopes(o.schemaFor, shapes, o.mainCluster)
    this.#table = new ScopeTable(ctx, this.#logins)
    const readiness = new Readiness(ctx, () => this.#logins.closeIdle())
    const readers = new Readers(ctx, this.#logins.clusters, this.#validated)
    const checkout = new Checkout(ctx, this.#table, this.#logins, readiness, readers)
    this.#checkout = checkout
    this.#calls = new Calls(ctx, checkout, readiness, readers)
    // Unref'd: an idle registry must not keep a process (or a test run) alive.
    this.#sweepTimer = setInterval(() => this.#table.sweep(o.clock.now()), o.sweepIntervalMs).unref()
    this.master = this.forMaster()
  }

  /**
   * The master/catalog schema's database, with `limits` on each call (a deadline, a signal).
   *
   * @example
   * const { rows } = await pools.forMaster({ deadline }).query('SELECT id FROM tenants WHERE status = $1', ['active'])
   */
  forMaster(limits: CallLimits = {}): TenantDb {
    const scope = this.#masterScope()
    return this.#db(() => scope, limitsOf(limits))
  }

  /**
   * Opens one connection to the main cluster, as the master schema's login (the one tenant traffic
   * shares unless tenants have credentials of their own), and leaves it idle for the first call: for
   * an environment initialised ahead of its requests (provisioned concurrency, or Lambda's own early
   * inits). Resolves within `timeoutMs` (default 1000, at most 1000) whatever the database or the
   * credentials provider do, and never rejects: a failure or a timeout is logged once (no secret)
   * and the first call then connects as it would have. An attempt still running at the bound goes
   * on: a call that comes meanwhile takes its connection when it is ready rather than open another.
   *
   * Once the connection is open and idle, `warmUp` runs within the same bound (its limits carry the
   * deadline): by default one statement with a parameter on the master scope, counted as any call,
   * so that the code a call runs (checkout, the session check, pg's extended protocol, the parsing of
   * rows) is compiled before the first request rather than during it. Give a statement of your own
   * the first request runs too (the tenant catalog's look-up), touching no tenant's data. Its failure
   * leaves the connection as it is and is logged once; the outcome is still `opened`. A request that
   * comes during the warm-up's round trip finds the connection busy and opens another, as it would
   * while any call holds it; one that came before the connection was ready got it (`handedOver`),
   * and then nothing is warmed up.
   *
   * @example
   * // At module load (init), not awaited past its bound:
   * const prewarmed = getTenantPools().prewarm({ timeoutMs: 1000 })
   * // With the catalog's own look-up as the warm-up:
   * getTenantPools().prewarm({ warmUp: (limits) => catalog.warmUp(limits) })
   */
  prewarm(options: PrewarmOptions = {}): Promise<PrewarmOutcome> {
    const timeoutMs = Math.min(
      PREWARM_MAX_TIMEOUT_MS,
      Math.max(0, Number.isFinite(options.timeoutMs) ? (options.timeoutMs as number) : PREWARM_TIMEOUT_MS),
    )
    const ctx = this.#ctx
    const scope = this.#masterScope()
    const startedAt = ctx.options.clock.now()
    // The credentials provider gets what is left of the bound, as a call's deadline bounds it; so
    // does the warm-up.
    const limits: CallLimits = { deadline: startedAt + timeoutMs }
    const warmUp = options.warmUp ?? ((l: CallLimits) => this.forMaster(l).query(WARM_UP_SQL, ['prewarm']))
    const settled = rejectThrown(() => this.#checkout.prewarm(scope, limits))
      // Only on a connection parked idle: one handed to a caller is warming up already, and the
      // warm-up must not open a second.
      .then((outcome) =>
        outcome.outcome === 'opened' && !outcome.handedOver ? warmedUp(outcome, warmUp, limits) : outcome,
      )
      .catch(
        (err: unknown): PrewarmOutcome => ({
          outcome: 'failed',
          error: asError(err),
        }),
      )
      .then((outcome) => {
        // Counted whenever it fails, within the bound or after it; logged once, below.
        if (outcome.outcome === 'failed') ctx.counters.connectFailures++
        return outcome
      })
    return new Promise((resolve) => {
      let done = false
      const finish = (outcome: PrewarmOutcome) => {
        if (done) return
        done = true
        clearTimeout(timer)
        if (outcome.outcome === 'failed') {
          ctx.log.warn('prewarm failed: the first request connects instead', loggable(outcome.error))
        } else if (outcome.warmUpError) {
          ctx.log.warn(
            'prewarm opened its connection, but its warm-up failed: the first request runs its code cold',
            loggable(outcome.warmUpError),
          )
        } else if (outcome.outcome === 'timedOut') {
          ctx.log.warn(
            'prewarm not done within its bound: the first request takes its connection or opens one',
            {
              timeoutMs,
            },
          )
        }
        resolve(outcome)
      }
      // Less what the start took: the provider's synchronous part (Secrets Manager's SDK is required
      // there) is inside the bound. Unref'd: a prewarm must not keep a process alive.
      const left = Math.max(0, startedAt + timeoutMs - ctx.options.clock.now())
      const timer = setTimeout(() => finish({ outcome: 'timedOut' }), left).unref()
      void settled.then(finish)
    })
  }

  /**
   * Tells the registry an invocation has begun (the tenantDb middleware does it). The environment may
   * have been frozen since the previous one, for any length of time: each connection freed before
   * now then waits one full event-loop poll phase before it is handed out, so that a FATAL the server
   * sent meanwhile is read first. Without it, only connections idle 20 ms or more wait.
   *
   * @example
   * export const handler = async (event: Event) => {
   *   pools.invocationStarted() // first thing, when not behind the tenantDb middleware
   *   return pools.query('acme', 'SELECT 1')
   * }
   */
  invocationStarted(): void {
    this.#ctx.invocation++
  }

  /**
   * The schema of a tenant (validated), as the pools use it.
   *
   * @example
   * pools.schemaOf('acme') // 'tenant_acme' with the default schemaFor
   */
  schemaOf(tenantId: string): string {
    return this.#scope(tenantId, {}).schema
  }

  /**
   * The names of the clusters this registry connects to; the main one first.
   *
   * @example
   * for (const cluster of pools.clusterNames) log.info('cluster', { cluster })
   */
  get clusterNames(): string[] {
    return [...this.#logins.clusters.keys()]
  }

  /**
   * The cluster the top-level settings describe (the master schema's).
   *
   * @example
   * const { cluster } = await catalog.placement('acme')
   * const moved = cluster !== pools.mainCluster
   */
  get mainCluster(): string {
    return this.#ctx.options.mainCluster
  }

  /**
   * The schema of the master/catalog pool.
   *
   * @example
   * await pools.master.withClient((client) => migrate(client, pools.masterSchema, masterMigrations))
   */
  get masterSchema(): string {
    return this.#ctx.options.masterSchema
  }

  /**
   * A tenant's database. The id is validated now and again on each call. A `deadline` or `signal`
   * in `options` bounds every call made through it.
   *
   * @example
   * const db = pools.forTenant('acme', { deadline: Date.now() + context.getRemainingTimeInMillis() - 1000 })
   * const { rows } = await db.query('SELECT * FROM orders WHERE id = $1', [id])
   */
  forTenant(tenantId: string, options: ScopeOptions = {}): TenantDb {
    this.#scope(tenantId, options)
    return this.#db(() => this.#scope(tenantId, options), limitsOf(options))
  }

  /**
   * Runs one statement on a pooled connection of the tenant's schema.
   *
   * @example
   * const { rows } = await pools.query<{ id: string }>('acme', 'SELECT id FROM orders WHERE status = $1', ['paid'])
   */
  query<R extends QueryResultRow = QueryResultRow>(
    tenantId: string,
    text: string,
    values?: unknown[],
    options: ScopeOptions = NO_OPTIONS,
  ): Promise<QueryResult<R>> {
    // Not an async function: Calls.query returns the promise of the async work, and every layer of
    // promises costs microtask hops on the warm path. An invalid tenant id still rejects, not throws.
    return rejectThrown(() =>
      this.#calls.query<R>(this.#scope(tenantId, options), text, values, limitsOf(options)),
    )
  }

  /**
   * Lends a connection for several statements. It is destroyed, not reused, if `fn` throws.
   *
   * @example
   * const n = await pools.withClient('acme', async (client) => {
   *   await client.query('SET LOCAL work_mem = $1', ['64MB'])
   *   return (await client.query('SELECT count(*) FROM orders')).rows[0]
   * })
   */
  async withClient<T>(
    tenantId: string,
    fn: (client: ClientBase) => Promise<T>,
    options: ScopeOptions = {},
  ): Promise<T> {
    return this.#calls.withClient(this.#scope(tenantId, options), fn, limitsOf(options))
  }

  /**
   * BEGIN … COMMIT around `fn`; ROLLBACK (and a destroyed connection) if it throws.
   *
   * @example
   * await pools.transaction('acme', async (client) => {
   *   await client.query('INSERT INTO orders (id) VALUES ($1)', [id])
   *   await client.query('INSERT INTO order_lines (order_id) VALUES ($1)', [id])
   * })
   */
  async transaction<T>(
    tenantId: string,
    fn: (client: ClientBase) => Promise<T>,
    options: ScopeOptions = {},
  ): Promise<T> {
    return this.#calls.transaction(this.#scope(tenantId, options), fn, limitsOf(options))
  }

  /**
   * Per scope, per login, per cluster and in total; the budget; the counters since it was built.
   *
   * @example
   * const { totals, budget } = pools.stats()
   * log.info('pools', { scopes: totals.scopes, connections: totals.total, budgetUsed: budget.used })
   */
  stats(): TenantPoolsStats {
    return statsOf(this.#table, this.#logins, this.#budget, this.#ctx.counters, this.#ctx.options.clock.now())
  }

  /**
   * The counters of `stats()` alone (a copy), without building the rest: what per-request metrics
   * read before and after each request.
   *
   * @example
   * const before = pools.counters()
   * await handler(event, context)
   * metrics.addMetric('checkouts', 'Count', pools.counters().checkouts - before.checkouts)
   */
  counters(): Counters {
    return reported(this.#ctx.counters)
  }

  /**
   * Ends and removes the tenant's pools in this environment: the one for `app` if given, otherwise
   * all of the tenant's pools. Calls holding a connection finish (it closes on release); calls still
   * waiting for one fail with PoolsEndedError. Resolves when the pools' sockets are closed.
   *
   * @example
   * await pools.evict('acme') // every pool of acme in this environment
   * await pools.evict('acme', { app: 'mobile' }) // acme:mobile only
   */
  async evict(tenantId: string, options: ScopeOptions = {}): Promise<number> {
    // Validated (a cluster too, if named); then every scope of the tenant (or of its app) goes, on
    // whichever cluster and endpoint: a tenant that moved may have scopes on both.
    this.#scope(tenantId, options)
    const keys = [...this.#table.values()]
      .filter(
        (u) => u.scope.tenantId === tenantId && (options.app === undefined || u.scope.app === options.app),
      )
      .map((u) => u.key)
    await Promise.all(keys.map((k) => this.#table.remove(k)))
    return keys.length
  }

  /**
   * Closes every connection, including those of pools removed earlier. Later calls fail. Safe to call
   * twice.
   *
   * @example
   * afterAll(() => pools.end())
   */
  end(): Promise<void> {
    if (!this.#ending) {
      clearInterval(this.#sweepTimer)
      this.#ctx.ended = true
      for (const key of [...this.#table.keys()]) void this.#table.remove(key)
      this.#logins.end()
      this.#ending = Promise.all(this.#ctx.draining).then(() => {})
    }
    return this.#ending
  }

  #scope(tenantId: string, { app, cluster, readOnly }: ScopeOptions): Scope {
    return this.#validated.scope(tenantId, app, cluster, readOnly)
  }

  // The master schema's scope, on the main cluster's writer.
  #masterScope(): Scope {
    return {
      key: MASTER_KEY,
      tenantId: null,
      app: null,
      schema: this.#ctx.options.masterSchema,
      cluster: this.#ctx.options.mainCluster,
      readOnly: false,
      onReader: false,
    }
  }

  // Not async functions: each returns Calls' own promise, as query() does (a layer of promises
  // costs microtask hops on the warm path); a scope that cannot be made still rejects, not throws.
  #db(scope: () => Scope, limits: CallLimits): TenantDb {
    const calls = this.#calls
    return {
      query: (text, values) => rejectThrown(() => calls.query(scope(), text, values, limits)),
      withClient: (fn) => rejectThrown(() => calls.withClient(scope(), fn, limits)),
      transaction: (fn) => rejectThrown(() => calls.transaction(scope(), fn, limits)),
      asPgPool: () =>
        new TenantPgPool({
          query: (query, values, observer) => calls.query(scope(), query, values, limits, observer),
          lease: () => calls.lease(scope(), limits),
        }),
    }
  }
}

const NO_OPTIONS: ScopeOptions = Object.freeze({})

// The default warm-up: the extended protocol (a parameter), a row of text and a timestamp to parse.
const WARM_UP_SQL = 'SELECT $1::text AS warmed_up, now() AS at'

// An opened prewarm, with its warm-up's failure if it failed: the connection is there either way.
const warmedUp = async (
  opened: PrewarmOutcome,
  warmUp: (limits: CallLimits) => Promise<unknown>,
  limits: CallLimits,
): Promise<PrewarmOutcome> => {
  try {
    await warmUp(limits)
    return opened
  } catch (err) {
    return { ...opened, warmUpError: asError(err) }
  }
}

// A rejection's reason as an Error: what a PrewarmOutcome carries, whatever was thrown.
const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)))

// Our error's own message and the codes: no credentials, no connection string.
const loggable = (error: Error | undefined) => ({
  error: error?.name,
  // Ours say what failed, for which pool; another's might quote a connection string.
  message: error instanceof TenantPoolsError ? error.message : undefined,
  code: sqlState(error),
  cause: sqlState(error?.cause) ?? (error?.cause as { code?: string } | undefined)?.code,
})

// What `call` returns, or its throw as a rejection: a caller awaits one, never catches the other.
const rejectThrown = <T>(call: () => Promise<T>): Promise<T> => {
  try {
    return call()
  } catch (err) {
    return Promise.reject(err)
  }
}
const NO_LIMITS: CallLimits = Object.freeze({})

// Without bounds (the usual call), one shared object: the warm path allocates none.
const limitsOf = ({ deadline, signal, measure }: CallLimits): CallLimits =>
  deadline === undefined && signal === undefined && measure === undefined
    ? NO_LIMITS
    : { deadline, signal, measure }
