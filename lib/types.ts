// Narrow interfaces the library depends on, so tests can pass trivial fakes.

/** A logical unit of the registry: a tenant (optionally one of its apps) or the master schema. */
export interface Scope {
  /** `tenantId`, `tenantId:app`, or `$master`. */
  key: string
  /** null for the master scope. */
  tenantId: string | null
  app: string | null
  /** The schema its sessions' search_path selects. */
  schema: string
  /** The database cluster it connects to (see the `clusters` option). */
  cluster: string
  /** Opened read-only: its sessions refuse writes. */
  readOnly: boolean
  /** Read-only and served by the cluster's reader endpoint (a replica), not its writer. */
  onReader: boolean
}

/**
 * A login's user and password, as a credentials provider returns them.
 *
 * @example
 * const provider: CredentialsProvider = async () => ({ user: 'app', password: await readPassword() })
 */
export interface Credentials {
  user: string
  password: string
}

/**
 * What a pool tells its credentials provider when it opens a connection.
 *
 * @example
 * const credentials: CredentialsProvider = async ({ tenantId, forceRefresh }) =>
 *   tenantId === null ? masterLogin(forceRefresh) : tenantLogin(tenantId, forceRefresh)
 */
export interface CredentialsRequest {
  /** Pool key: `tenantId`, `tenantId:app`, or `$master`. */
  key: string
  /** null for the master pool. */
  tenantId: string | null
  app: string | null
  /** The cluster the connection is for: a provider may hold one secret per cluster. */
  cluster: string
  /** The server refused the last credentials (28P01): bypass any cache. */
  forceRefresh: boolean
  /**
   * With forceRefresh, the credentials the server refused. A provider that already holds different
   * ones (another connection refreshed first) can return those instead of fetching again.
   */
  refused?: Credentials
  /**
   * For a tenant's scope: whether the tenant has a database role of its own, one named as its
   * schema (asked on the main cluster). A provider that would let a tenant whose own secret is
   * missing log in with a shared one asks this first: a tenant with a role of its own never borrows
   * a wider login.
   */
  hasOwnRole?: () => Promise<boolean>
}

/**
 * Called for every new connection, so rotated credentials apply without rebuilding pools.
 * A provider that must not be used without TLS (RDS IAM tokens) sets `requiresTls`.
 *
 * @example
 * const pools = new TenantPools({
 *   credentials: async ({ forceRefresh }) => ({ user: 'app', password: await vault.password(forceRefresh) }),
 * })
 */
export type CredentialsProvider = ((request: CredentialsRequest) => Promise<Credentials>) & {
  requiresTls?: boolean
}

/**
 * Where the library reads the time (milliseconds, as Date.now()), so tests can move it by hand.
 *
 * @example
 * let now = 0
 * const pools = new TenantPools({ clock: { now: () => now } }) // a test moves time by hand: now += 60_000
 */
export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/**
 * The slice of a logger the library uses; Powertools Logger satisfies it.
 *
 * @example
 * import { Logger } from '@aws-lambda-powertools/logger'
 * const pools = new TenantPools({ logger: new Logger({ serviceName: 'orders' }) }) // or console
 */
export interface Log {
  debug(message: string, ...extra: Record<string, unknown>[]): void
  info(message: string, ...extra: Record<string, unknown>[]): void
  warn(message: string, ...extra: Record<string, unknown>[]): void
  error(message: string, ...extra: Record<string, unknown>[]): void
}

/** What a pool reports to its registry, which keeps the counters and the log. */
export interface PoolEvents {
  opened(): void
  closed(): void
  reused(): void
  acquireTimedOut(): void
  connectFailed(err: Error): void
  /** The server refused a connection's credentials (28P01); a refresh and one retry follow. */
  credentialsRefused(key: string): void
  /** The server had no connection to give (53300, 57P03); a backoff and a retry follow. */
  serverFull(key: string): void
  lost(key: string, err: Error): void
  /** A connection that had served maxSchemasPerConnection schemas was closed at its release. */
  retiredBySchemas(key: string): void
}

/**
 * What `prewarm()` is given: its bound and its warm-up.
 *
 * @example
 * await pools.prewarm({ timeoutMs: 500, warmUp: (limits) => catalog.warmUp(limits) })
 */
export interface PrewarmOptions {
  /** Its bound, in milliseconds: 1000 by default, at most 1000. */
  timeoutMs?: number
  /**
   * Run once the connection is open, within the bound (`limits` carry its deadline): statements the
   * first request would run, so that their code is compiled before it. One statement with a
   * parameter on the master scope by default.
   */
  warmUp?: (limits: CallLimits) => Promise<unknown>
}

/**
 * What `prewarm()` came to. `opened`: a connection is open and idle in the pool (or was handed to a
 * call that came meanwhile). `skipped`: nothing to do (the login has a connection already, no budget
 * slot was free, or the registry has ended). `failed`: the credentials or the connection failed
 * within the bound. `timedOut`: not done within the bound; the attempt goes on, and a call may take
 * its connection when it is ready.
 *
 * @example
 * const { outcome } = await pools.prewarm({ timeoutMs: 1000 })
 * if (outcome !== 'opened') log.info('no prewarmed connection', { outcome })
 */
export interface PrewarmOutcome {
  outcome: 'opened' | 'skipped' | 'failed' | 'timedOut'
  /** Why it was skipped. */
  reason?: string
  /** The failure, when failed. */
  error?: Error
  /** When opened: the connection went straight to a call that came meanwhile (no warm-up then). */
  handedOver?: true
  /** When opened: the warm-up's failure, if it failed (the connection stays). */
  warmUpError?: Error
}

/**
 * Bounds on one call, or on every call of a `forTenant` handle.
 *
 * @example
 * const ac = new AbortController()
 * await pools.query('acme', 'SELECT 1', [], { deadline: Date.now() + 2_000, signal: ac.signal })
 */
export interface CallLimits {
  /**
   * When the call must be over, in the registry clock's milliseconds (`Date.now()` by default):
   * the wait for a connection, its validation and every statement share what remains. The tenantDb
   * middleware sets it from the invocation's remaining time.
   */
  deadline?: number
  /** Aborting it ends a wait for a connection at once (DeadlineExceededError). */
  signal?: AbortSignal
  /** Counts what the calls made with these limits did (one request's share of the pools). */
  measure?: CallMeasure
}

/**
 * What some calls did to the pools: the request-level figures of the registry's counters.
 *
 * @example
 * const measure = newCallMeasure()
 * await pools.forTenant('acme', { measure }).query('SELECT 1')
 * log.info('db', { checkouts: measure.checkouts, waitMs: measure.acquireWaitMs })
 */
export interface CallMeasure {
  checkouts: number
  acquireWaitMs: number
  /** Checkouts served by a connection opened for them. */
  connectionsOpened: number
  /** Checkouts served by a connection that was already open. */
  connectionsReused: number
  connectionsReplaced: number
  connectionsRebound: number
  /** Read-only calls served by the writer because the cluster's reader could not be reached. */
  readerFallbacks: number
}

/**
 * A CallMeasure with every figure at 0, to pass in CallLimits' `measure`.
 *
 * @example
 * const measure = newCallMeasure()
 * await pools.forTenant('acme', { measure }).query('SELECT 1')
 */
export const newCallMeasure = (): CallMeasure => ({
  checkouts: 0,
  acquireWaitMs: 0,
  connectionsOpened: 0,
  connectionsReused: 0,
  connectionsReplaced: 0,
  connectionsRebound: 0,
  readerFallbacks: 0,
})

/**
 * Which scope of a tenant a call runs in (its app, its cluster, read-only or not), with the call's
 * limits.
 *
 * @example
 * await pools.query('acme', 'SELECT * FROM orders', [], { app: 'mobile', cluster: 'b', readOnly: true })
 */
export interface ScopeOptions extends CallLimits {
  /** A separate pool per app of a tenant (web, mobile …): the key becomes `tenantId:app`. */
  app?: string
  /**
   * The cluster holding the tenant (a name of the `clusters` option); the main cluster if not given.
   * The key becomes `tenantId[:app]@cluster` for any other.
   */
  cluster?: string
  /**
   * Read-only: served by the cluster's reader endpoint when it has one (the key ends in `/reader`),
   * else by its writer in read-only sessions (`/read-only`). A reader that cannot be reached sends
   * the calls to the writer for `readerRetryAfterMs`.
   */
  readOnly?: boolean
}
