// The registry: one small pool per `tenantId[:app]` plus one for the master schema, all sharing one
// connection budget. Built once per execution environment and kept across warm invocations.
import { Logger } from '@aws-lambda-powertools/logger'
import type { Client, ClientBase, QueryConfig, QueryResult, QueryResultRow } from 'pg'
import {
  ConnectError,
  ConnectionLostError,
  DeadlineExceededError,
  InvalidOptionsError,
  PoolsEndedError,
  StatementTimeoutError,
  TenantPoolsError,
} from '../errors'
import { resolveOptions, type TenantPoolsOptions } from '../options'
import { ConnectionBudget } from '../pool/budget'
import type { PooledConnection } from '../pool/connection'
import { baseConfig, clientFactory, type FactorySettings } from '../pool/connector'
import { TenantPool } from '../pool/login-pool'
import { usesTls } from '../pool/tls'
import { isConnectionLost, isServerKill, sqlState } from '../sqlstate'
import { assertApp, assertSchemaName, assertTenantId, poolKey } from '../tenancy/tenant-id'
import type { CallLimits, Log, PoolEvents, ScopeOptions, TenantDb } from '../types'
import { within } from './within'

const MAX_CACHED_SCOPES = 10_000

/** Key of the master/catalog pool. `$` cannot occur in a tenant id, so it never collides. */
export const MASTER_KEY = '$master'

interface Scope {
  key: string
  tenantId: string | null
  app: string | null
  schema: string
}

export interface PoolStats {
  key: string
  tenantId: string | null
  app: string | null
  total: number
  idle: number
  active: number
  waiting: number
  lastUsedAt: number
}

export interface TenantPoolsStats {
  pools: PoolStats[]
  totals: { pools: number; total: number; idle: number; active: number; waiting: number }
  budget: { limit: number; used: number; waiting: number }
  counters: Counters
}

const newCounters = () => ({
  poolsCreated: 0,
  poolsEvicted: 0,
  poolsExpired: 0,
  connectionsOpened: 0,
  connectionsClosed: 0,
  connectionsReused: 0,
  /** Pinged on checkout because they had been idle longer than validateAfterIdleMs. */
  connectionsPinged: 0,
  /** Found dead on checkout (after a freeze, say) and replaced before the caller's statement ran. */
  connectionsReplaced: 0,
  /** Statements (or withClient/transaction callbacks) given up on client-side; their connection destroyed. */
  statementTimeouts: 0,
  /** Liveness pings with no answer within validationTimeoutMs. */
  validationTimeouts: 0,
  /** Calls refused because their deadline had passed, or came while they waited for a connection. */
  deadlinesExceeded: 0,
  connectionsLost: 0,
  serverKills: 0,
  connectFailures: 0,
  /** New connections refused with 28P01 and retried once with refreshed credentials. */
  credentialRefreshes: 0,
  acquireTimeouts: 0,
  /** Connection attempts the server refused as full (53300, 57P03) and retried after a backoff. */
  serverFullRetries: 0,
  /** Checkouts held longer than leakDetectionMs. */
  leaksSuspected: 0,
  /** Checkouts, and the milliseconds callers spent waiting for them in total. */
  checkouts: 0,
  acquireWaitMs: 0,
})
export type Counters = ReturnType<typeof newCounters>

// A connection idle at least this long, or freed in an earlier invocation, waits one full poll phase
// for a pending server kill before it is handed out. Back-to-back calls within one invocation skip it.
const SETTLE_AFTER_IDLE_MS = 20

// Released with this, a connection is destroyed; it failed the liveness check.
const STALE = new Error('connection failed its liveness check')

export class TenantPools {
  /** The master/catalog schema's database. */
  readonly master: TenantDb
  readonly #options: ReturnType<typeof resolveOptions>
  readonly #factory: FactorySettings
  readonly #pools = new Map<string, TenantPool>()
  readonly #budget: ConnectionBudget
  readonly #counters = newCounters()
  readonly #events: PoolEvents
  readonly #log: Log
  readonly #sweepTimer: NodeJS.Timeout
  // Pools removed from the map (evicted, expired) whose sockets are still closing: end() waits for them.
  readonly #draining = new Set<Promise<void>>()
  // Validated scopes: tenantId → app ('' for none) → scope. Holds only ids that passed validation.
  readonly #scopes = new Map<string, Map<string, Scope>>()
  #lastSweep: number
  #ending: Promise<void> | undefined
  // When a statement or a ping last went unanswered: connections idle since before then are pinged
  // before they are handed out, whatever their idle time, since their server may be gone too.
  #suspectSince = -1
  // Invocations started (invocationStarted): a connection freed in an earlier one may have been
  // frozen since, however short the freeze, and always waits for pending socket events.
  #invocation = 0

  constructor(options: TenantPoolsOptions = {}) {
    this.#options = resolveOptions(options)
    const o = this.#options
    this.#log = o.logger ?? new Logger({ serviceName: 'tenant-pools' })
    const { base, user, password } = baseConfig(options, o.keepAliveInitialDelayMs)
    if (options.credentials?.requiresTls && !usesTls(base.ssl)) {
      throw new InvalidOptionsError(
        'Invalid TenantPools option "ssl": these credentials (an RDS IAM token) must only travel over TLS; ' +
          "set ssl to 'require' or 'verify-full'",
      )
    }
    this.#factory = {
      base,
      credentials:
        options.credentials ?? (async () => ({ user, password }) as { user: string; password: string }),
      applicationNamePrefix: o.applicationNamePrefix,
      connectTimeoutMs: o.connectTimeoutMs,
      statementTimeoutMs: o.statementTimeoutMs,
      idleSessionTimeoutMs: o.idleSessionTimeoutMs,
      proxySafe: o.proxySafe,
    }
    this.#budget = new ConnectionBudget(
      o.budget,
      () => this.#freeIdleSlot(),
      () => o.clock.now(),
    )
    this.#events = this.#poolEvents()
    this.#lastSweep = o.clock.now()
    // Unref'd: an idle registry must not keep a process (or a test run) alive.
    this.#sweepTimer = setInterval(() => this.#sweep(o.clock.now()), o.sweepIntervalMs).unref()
    this.master = this.forMaster()
  }

  /** The master/catalog schema's database, with `limits` on each call (a deadline, a signal). */
  forMaster(limits: CallLimits = {}): TenantDb {
    const schema = this.#options.masterSchema
    return this.#db(() => ({ key: MASTER_KEY, tenantId: null, app: null, schema }), limitsOf(limits))
  }

  /**
   * Tells the registry an invocation has begun (the tenantDb middleware does it). The environment may
   * have been frozen since the previous one, for any length of time: each connection freed before
   * now then waits one full event-loop poll phase before it is handed out, so that a FATAL the server
   * sent meanwhile is read first. Without it, only connections idle 20 ms or more wait.
   */
  invocationStarted(): void {
    this.#invocation++
  }

  /** The schema of a tenant (validated), as the pools use it. */
  schemaOf(tenantId: string): string {
    return this.#scope(tenantId, {}).schema
  }

  /** The schema of the master/catalog pool. */
  get masterSchema(): string {
    return this.#options.masterSchema
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

  /** Runs one statement on a pooled connection of the tenant's schema. */
  async query<R extends QueryResultRow = QueryResultRow>(
    tenantId: string,
    text: string,
    values?: unknown[],
    options: ScopeOptions = {},
  ): Promise<QueryResult<R>> {
    return this.#query<R>(this.#scope(tenantId, options), text, values, limitsOf(options))
  }

  /** Lends a connection for several statements. It is destroyed, not reused, if `fn` throws. */
  async withClient<T>(
    tenantId: string,
    fn: (client: ClientBase) => Promise<T>,
    options: ScopeOptions = {},
  ): Promise<T> {
    return this.#withClient(this.#scope(tenantId, options), fn, limitsOf(options))
  }

  /** BEGIN … COMMIT around `fn`; ROLLBACK (and a destroyed connection) if it throws. */
  async transaction<T>(
    tenantId: string,
    fn: (client: ClientBase) => Promise<T>,
    options: ScopeOptions = {},
  ): Promise<T> {
    return this.#transaction(this.#scope(tenantId, options), fn, limitsOf(options))
  }

  stats(): TenantPoolsStats {
    const pools = [...this.#pools.values()].map((p) => ({
      key: p.key,
      tenantId: p.tenantId,
      app: p.app,
      total: p.total,
      idle: p.idle,
      active: p.active,
      waiting: p.waiting,
      lastUsedAt: p.lastUsedAt,
    }))
    const sum = (f: (p: PoolStats) => number) => pools.reduce((n, p) => n + f(p), 0)
    return {
      pools,
      totals: {
        pools: pools.length,
        total: sum((p) => p.total),
        idle: sum((p) => p.idle),
        active: sum((p) => p.active),
        waiting: sum((p) => p.waiting),
      },
      budget: { limit: this.#budget.limit, used: this.#budget.used, waiting: this.#budget.waiting },
      counters: { ...this.#counters },
    }
  }

  /**
   * Ends and removes the tenant's pools in this environment: the one for `app` if given, otherwise
   * all of the tenant's pools. Calls holding a connection finish (it closes on release); calls still
   * waiting for one fail with PoolsEndedError. Resolves when the pools' sockets are closed.
   */
  async evict(tenantId: string, options: ScopeOptions = {}): Promise<number> {
    const { key, tenantId: id } = this.#scope(tenantId, options)
    const keys = [...this.#pools.keys()].filter((k) =>
      options.app !== undefined ? k === key : k === id || k.startsWith(`${id}:`),
    )
    await Promise.all(keys.map((k) => this.#remove(k)))
    return keys.length
  }

  /** Closes every connection, including those of pools removed earlier. Later calls fail. Safe to call twice. */
  end(): Promise<void> {
    if (!this.#ending) {
      clearInterval(this.#sweepTimer)
      for (const key of [...this.#pools.keys()]) void this.#remove(key)
      this.#ending = Promise.all(this.#draining).then(() => {})
    }
    return this.#ending
  }

  #scope(tenantId: string, { app }: ScopeOptions): Scope {
    // Exact (tenantId, app) pairs that passed validation before: a hit needs no check again.
    // Nested maps, not a joined key, so that an invalid id like "acme:web" can never match.
    const known = this.#scopes.get(tenantId)?.get(app ?? '')
    if (known) return known
    assertTenantId(tenantId)
    if (app !== undefined) assertApp(app)
    const schema = this.#options.schemaFor(tenantId)
    assertSchemaName(schema)
    const scope = { key: poolKey(tenantId, app), tenantId, app: app ?? null, schema }
    // Kept so that the warm path allocates and checks nothing; bounded by a reset.
    if (this.#scopes.size >= MAX_CACHED_SCOPES) this.#scopes.clear()
    const apps = this.#scopes.get(tenantId) ?? new Map<string, Scope>()
    apps.set(app ?? '', scope)
    this.#scopes.set(tenantId, apps)
    return scope
  }

  #db(scope: () => Scope, limits: CallLimits): TenantDb {
    return {
      query: async (text, values) => this.#query(scope(), text, values, limits),
      withClient: async (fn) => this.#withClient(scope(), fn, limits),
      transaction: async (fn) => this.#transaction(scope(), fn, limits),
    }
  }

  /**
   * Milliseconds left before the call's deadline (Infinity without one). Throws once it has passed
   * or the signal is aborted: nothing more of the call may start.
   */
  #remaining(limits: CallLimits, what: string): number {
    if (limits.signal?.aborted) {
      this.#counters.deadlinesExceeded++
      throw new DeadlineExceededError(`The call was aborted before ${what}`)
    }
    if (limits.deadline === undefined) return Number.POSITIVE_INFINITY
    const left = limits.deadline - this.#options.clock.now()
    if (left <= 0) {
      this.#counters.deadlinesExceeded++
      throw new DeadlineExceededError(`The call's deadline passed before ${what}`)
    }
    return left
  }

  // A statement that the server does not answer: its connection is destroyed (the server may still
  // run it, and the socket may be dead), and idle connections become suspect.
  #statementTimedOut(pool: TenantPool, conn: PooledConnection, err: StatementTimeoutError): never {
    this.#counters.statementTimeouts++
    conn.lost = true
    pool.release(conn, err)
    this.#suspectSince = this.#options.clock.now()
    this.#log.warn('statement unanswered: connection destroyed', {
      poolKey: pool.key,
      mayHaveRun: err.mayHaveRun,
    })
    throw err
  }

  async #query<R extends QueryResultRow>(
    scope: Scope,
    text: string,
    values: unknown[] | undefined,
    limits: CallLimits,
  ): Promise<QueryResult<R>> {
    const { pool, conn, leftMs } = await this.#checkout(scope, limits)
    const server = this.#options.statementTimeoutMs
    const own = server > 0 ? server + this.#options.statementTimeoutMarginMs : Number.POSITIVE_INFINITY
    const boundMs = Math.min(own, leftMs)
    // Made only when the timer fires: the warm path allocates no error.
    let timedOut: StatementTimeoutError | undefined
    const outOfTime = () => {
      timedOut = new StatementTimeoutError(
        `No answer to a statement of pool ${scope.key} within ${Math.round(boundMs)} ms; it may have run`,
        true,
      )
      return timedOut
    }
    let result: QueryResult<R>
    try {
      result = await within(conn.client.query<R>(text, values), boundMs, outOfTime)
    } catch (err) {
      if (timedOut !== undefined && err === timedOut) this.#statementTimedOut(pool, conn, timedOut)
      // A failed statement leaves the session clean (we ran nothing else on it): keep the connection
      // unless the connection itself broke. `dirty` covers a statement that opened a transaction.
      pool.release(conn, isConnectionLost(err) || conn.lost ? err : undefined)
      throw typed(err, conn)
    }
    pool.release(conn)
    return result
  }

  async #withClient<T>(
    scope: Scope,
    fn: (client: ClientBase) => Promise<T>,
    limits: CallLimits,
    commit?: { sent: boolean },
  ): Promise<T> {
    const { pool, conn, leftMs: boundMs } = await this.#checkout(scope, limits)
    // Individual statements of a callback are not bounded here (the server's statement_timeout
    // is); the whole callback is bounded by the deadline.
    let timedOut: StatementTimeoutError | undefined
    const outOfTime = () => {
      // A transaction whose COMMIT was never sent cannot have committed: the server rolls it back
      // when the destroyed connection's socket closes.
      timedOut = new StatementTimeoutError(
        `The callback for pool ${scope.key} did not finish before the call's deadline`,
        commit ? commit.sent : true,
      )
      return timedOut
    }
    let result: T
    try {
      result = await within(fn(conn.client), boundMs, outOfTime)
    } catch (err) {
      if (timedOut !== undefined && err === timedOut) this.#statementTimedOut(pool, conn, timedOut)
      // The handler may have left session state behind; a fresh connection is cheaper than a leak.
      pool.release(conn, err ?? new Error('withClient callback threw a nullish value'))
      throw typed(err, conn)
    }
    pool.release(conn)
    return result
  }

  #transaction<T>(scope: Scope, fn: (client: ClientBase) => Promise<T>, limits: CallLimits): Promise<T> {
    const commit = { sent: false }
    return this.#withClient(
      scope,
      async (client) => {
        await client.query('BEGIN')
        try {
          const result = await fn(client)
          commit.sent = true
          await client.query('COMMIT')
          return result
        } catch (err) {
          try {
            await client.query('ROLLBACK')
          } catch (rollbackErr) {
            // Never hide the handler's error; the connection is destroyed on release anyway.
            this.#log.warn('ROLLBACK failed', { poolKey: scope.key, sqlState: sqlState(rollbackErr) })
          }
          throw err
        }
      },
      limits,
      commit,
    )
  }

  // Hands out a live connection. One idle for a while (a thawed environment, say) is checked first;
  // if it is dead it is discarded and another taken, before any statement of the caller has run.
  async #checkout(
    scope: Scope,
    limits: CallLimits,
  ): Promise<{ pool: TenantPool; conn: PooledConnection; leftMs: number }> {
    if (this.#ending) throw new PoolsEndedError('TenantPools has been ended: build a new instance')
    // Taken before the first await, while the caller's frames are still on the stack.
    const acquiredAt =
      this.#options.leakDetectionMs > 0 ? new Error('connection acquired here').stack : undefined
    const now = this.#options.clock.now()
    // Timers don't run while an environment is frozen, so calls sweep too (at most once an interval).
    if (now - this.#lastSweep >= this.#options.sweepIntervalMs) this.#sweep(now)
    const pool = this.#poolFor(scope)
    for (;;) {
      const conn = await this.#acquire(pool, limits)
      const idleFor = this.#options.clock.now() - conn.idleSince
      // Idle since before a statement or ping went unanswered: its server may be gone too.
      const suspect = conn.idleSince <= this.#suspectSince
      // Even a fresh connection can arrive dead: frozen mid-connect, its FATAL was read with its
      // ReadyForQuery. `lost` is set synchronously by the error event, so checking it costs nothing.
      if (
        !conn.lost &&
        (conn.idleSince === 0 ||
          (idleFor < SETTLE_AFTER_IDLE_MS && !suspect && conn.freedInInvocation === this.#invocation) ||
          (await this.#isAliveOrRelease(
            pool,
            conn,
            suspect || idleFor >= this.#options.validateAfterIdleMs,
            limits,
          )))
      ) {
        // What remains of the deadline for the caller's statements; none left, the connection goes back.
        let leftMs: number
        try {
          leftMs = this.#remaining(limits, 'its first statement was sent')
        } catch (err) {
          pool.release(conn)
          throw err
        }
        this.#counters.checkouts++
        this.#counters.acquireWaitMs += this.#options.clock.now() - now
        if (acquiredAt !== undefined) this.#watchForLeak(scope.key, conn, acquiredAt)
        return { pool, conn, leftMs }
      }
      this.#counters.connectionsReplaced++
      pool.release(conn, STALE)
    }
  }

  // As HikariCP's leakDetectionThreshold: a connection held too long is reported with the stack of
  // the code that took it. The holder keeps it; this only tells someone where to look.
  #watchForLeak(key: string, conn: PooledConnection, acquiredAt: string): void {
    const ms = this.#options.leakDetectionMs
    conn.leakTimer = setTimeout(() => {
      this.#counters.leaksSuspected++
      this.#log.warn('connection held longer than leakDetectionMs: possible leak', {
        poolKey: key,
        heldMs: ms,
        acquiredAt,
      })
    }, ms).unref()
  }

  // A checkout waits at most the connect timeout, or until the deadline if that comes first.
  async #acquire(pool: TenantPool, limits: CallLimits): Promise<PooledConnection> {
    const left = this.#remaining(limits, 'it got a connection')
    const waitMs = Math.min(this.#options.connectTimeoutMs, left)
    try {
      return await pool.acquire({
        waitMs,
        deadlineBound: left < this.#options.connectTimeoutMs,
        signal: limits.signal,
      })
    } catch (err) {
      if (err instanceof DeadlineExceededError) this.#counters.deadlinesExceeded++
      throw err
    }
  }

  // A deadline that passes during the check must not strand the connection: it goes back first.
  async #isAliveOrRelease(
    pool: TenantPool,
    conn: PooledConnection,
    ping: boolean,
    limits: CallLimits,
  ): Promise<boolean> {
    try {
      return await this.#isAlive(conn, ping, limits)
    } catch (err) {
      pool.release(conn, STALE)
      throw err
    }
  }

  async #isAlive(conn: PooledConnection, ping: boolean, limits: CallLimits): Promise<boolean> {
    // After a thaw, expired timers run before pending socket events are read, and a request read in
    // the poll phase the freeze interrupted resumes before the FATALs the server sent meanwhile
    // (57P01, 57P05) are read in the next one. Wait through one full poll phase so they are seen.
    await settleOnePollPhase()
    if (conn.lost) return false
    if (!ping) return true
    this.#counters.connectionsPinged++
    // A socket that died silently (failover, NAT timeout) only shows itself when used.
    const boundMs = Math.min(
      this.#options.validationTimeoutMs,
      this.#remaining(limits, 'it got a connection'),
    )
    const unanswered = new Error('liveness ping unanswered')
    try {
      await within(conn.client.query('SELECT 1'), boundMs, unanswered)
      return true
    } catch (err) {
      if (err === unanswered) {
        // The server answers nothing: every idle connection to it would cost the caller the same
        // wait, so they are closed now rather than pinged one by one.
        this.#counters.validationTimeouts++
        this.#suspectSince = this.#options.clock.now()
        for (const pool of this.#pools.values()) pool.closeIdle()
      }
      return false
    }
  }

  #poolFor(scope: Scope): TenantPool {
    const existing = this.#pools.get(scope.key)
    if (existing) return existing
    if (scope.key !== MASTER_KEY) this.#makeRoomForPool()
    const o = this.#options
    const pool = new TenantPool({
      key: scope.key,
      tenantId: scope.tenantId,
      app: scope.app,
      max: o.maxPerPool,
      idleTimeoutMs: o.idleTimeoutMs,
      maxLifetimeMs: o.maxLifetimeMs,
      connectTimeoutMs: o.connectTimeoutMs,
      budget: this.#budget,
      clock: o.clock,
      events: this.#events,
      invocation: () => this.#invocation,
      createClient: clientFactory(scope, this.#factory),
      verify: o.proxySafe ? (client) => this.#verifySchema(client, scope) : undefined,
    })
    this.#pools.set(scope.key, pool)
    this.#counters.poolsCreated++
    return pool
  }

  // In proxy-safe mode the search_path comes from the role (ALTER ROLE … SET search_path). Refuse a
  // connection whose role would put the caller in another schema: isolation must not depend on luck.
  async #verifySchema(client: Client, scope: Scope): Promise<void> {
    // pg honours a per-query query_timeout; @types/pg does not declare it.
    const check: QueryConfig & { query_timeout: number } = {
      text: 'SELECT current_schema() AS schema',
      query_timeout: this.#options.connectTimeoutMs,
    }
    const { rows } = await client.query<{ schema: string | null }>(check)
    if (rows[0]?.schema !== scope.schema) {
      throw new ConnectError(
        `Proxy-safe mode: the role's search_path does not select schema ${scope.schema} for pool ${scope.key}. ` +
          'Run ALTER ROLE <role> SET search_path = <schema> for the role this pool logs in as.',
      )
    }
  }

  // Past maxPools, the least recently used pool with no call in flight is ended. If every pool is busy
  // the registry goes over the limit for now rather than cut a running call short.
  #makeRoomForPool(): void {
    const tenantPools = [...this.#pools.values()].filter((p) => p.key !== MASTER_KEY)
    if (tenantPools.length < this.#options.maxPools) return
    const victim = leastRecentlyUsed(tenantPools.filter((p) => p.quiet))
    if (!victim) {
      this.#log.warn('maxPools exceeded: every pool has a call in flight', {
        maxPools: this.#options.maxPools,
      })
      return
    }
    this.#counters.poolsEvicted++
    void this.#remove(victim.key)
  }

  // The budget is spent and a pool needs a connection: close an idle one of the least recently used pool.
  #freeIdleSlot(): void {
    const victim = leastRecentlyUsed([...this.#pools.values()].filter((p) => p.idle > 0))
    victim?.closeOldestIdle()
  }

  #sweep(now: number): void {
    this.#lastSweep = now
    for (const pool of [...this.#pools.values()]) {
      pool.sweep(now)
      if (pool.quiet && now - pool.lastUsedAt >= this.#options.poolTtlMs) {
        this.#counters.poolsExpired++
        void this.#remove(pool.key)
      }
    }
  }

  #remove(key: string): Promise<void> {
    const pool = this.#pools.get(key)
    if (!pool) return Promise.resolve()
    this.#pools.delete(key)
    const ended = pool.end()
    this.#draining.add(ended)
    void ended.then(() => this.#draining.delete(ended))
    return ended
  }

  #poolEvents(): PoolEvents {
    const c = this.#counters
    return {
      opened: () => c.connectionsOpened++,
      closed: () => c.connectionsClosed++,
      reused: () => c.connectionsReused++,
      acquireTimedOut: () => c.acquireTimeouts++,
      serverFull: (key) => {
        c.serverFullRetries++
        // Our own idle connections elsewhere are what we can give back to a full server.
        let closed = 0
        for (const pool of this.#pools.values()) if (pool.key !== key) closed += pool.closeIdle()
        this.#log.warn('server out of connections: retrying with backoff', {
          poolKey: key,
          idleClosed: closed,
        })
      },
      credentialsRefused: (key) => {
        c.credentialRefreshes++
        this.#log.info('credentials refused (28P01): refreshing them and retrying once', { poolKey: key })
      },
      connectFailed: (err) => {
        c.connectFailures++
        this.#log.warn('connection attempt failed', { code: sqlState(err), cause: sqlState(err.cause) })
      },
      lost: (key, err) => {
        c.connectionsLost++
        if (isServerKill(err)) c.serverKills++
        // An idle connection killed by the server is routine in Lambda; log it, never throw it.
        this.#log.info('connection lost', { poolKey: key, sqlState: sqlState(err) })
      },
    }
  }
}

// An immediate runs in the check phase of the current loop turn, before the next poll phase; one
// scheduled from there runs in the next turn's check phase, after that poll phase has read the sockets.
const settleOnePollPhase = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)))

const limitsOf = ({ deadline, signal }: CallLimits): CallLimits => ({ deadline, signal })

// An error without SQLSTATE from a connection that is now lost is the loss itself.
const typed = (err: unknown, conn: PooledConnection): unknown =>
  conn.lost && sqlState(err) === undefined && !(err instanceof TenantPoolsError)
    ? new ConnectionLostError('The connection to the database was lost during the call', { cause: err })
    : err

const leastRecentlyUsed = (pools: TenantPool[]): TenantPool | undefined =>
  pools.reduce<TenantPool | undefined>(
    (lru, p) => (!lru || p.lastUsedAt < lru.lastUsedAt ? p : lru),
    undefined,
  )
