// The registry: tenant scopes (`tenantId[:app]`, plus the master schema) are the logical unit, with
// a per-scope limit, stats, LRU and TTL. Physical connections belong to logins (endpoint, database,
// user) and are rebound between the scopes of a login, all within one per-environment budget. Built
// once per execution environment and kept across warm invocations.
import { Logger } from '@aws-lambda-powertools/logger'
import type { Client, ClientBase, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg'
import { resolveOptions, type TenantPoolsOptions } from '../config/options'
import {
  ConnectError,
  ConnectionLostError,
  CredentialsError,
  DeadlineExceededError,
  PoolExhaustedError,
  PoolsEndedError,
  StatementTimeoutError,
  TenantPoolsError,
} from '../errors'
import { AnswerWatch } from '../pool/answer-watch'
import { boundQuery, combinable } from '../pool/bound-query'
import { ConnectionBudget } from '../pool/budget'
import type { PooledConnection } from '../pool/connection'
import { applicationNameFor, connector, credentialsRequest } from '../pool/connector'
import { LoginPool } from '../pool/login-pool'
import { ScopeUse } from '../pool/scope-use'
import {
  forgetPreparedStatements,
  maybeChangesSession,
  PROXY_SAFE_RESET_SQL,
  searchPathSelects,
} from '../pool/session'
import { isConnectionLost, isServerKill, isSocketLost, isSocketReset, sqlState } from '../sqlstate'
import type { CallLimits, Log, PoolEvents, Scope, ScopeOptions, TenantDb } from '../types'
import { buildClusters, type Cluster, type Endpoint } from './clusters'
import { heldByThisCall, holding } from './held'
import { type CheckoutObserver, type TenantHandle, TenantPgPool } from './pg-pool-handle'
import { poolEvents } from './pool-events'
import { RoleLookup } from './role-lookup'
import { ValidatedScopes } from './scopes'
import { newCounters, type PoolStats, type TenantPoolsStats } from './stats'
import { firstAnswerWithin, within } from './within'

export type { ClusterStats, Counters, LoginStats, PoolStats, TenantPoolsStats } from './stats'

/** Key of the master/catalog scope. `$` cannot occur in a tenant id, so it never collides. */
export const MASTER_KEY = '$master'

// A connection idle at least this long, or freed in an earlier invocation, waits one full poll phase
// for a pending server kill before it is handed out. Back-to-back calls within one invocation skip it.
const SETTLE_AFTER_IDLE_MS = 20
// How old an answer to "has this tenant a role of its own" may be before it is looked up again (in
// the background: role-lookup.ts).
const ROLE_LOOKUP_MAX_AGE_MS = 60_000
// Statements sent again after meeting a reset with no answer (#queryOn). After the first, every
// idle connection is pinged before use (suspect): one more attempt is the usual case.
const UNANSWERED_RETRIES = 3

// Released with this, a connection is destroyed; it failed the liveness check.
const STALE = new Error('connection failed its liveness check')

export class TenantPools {
  /** The master/catalog schema's database. */
  readonly master: TenantDb
  readonly #options: ReturnType<typeof resolveOptions>
  readonly #clusters: Map<string, Cluster>
  // Scopes in use, by key: their counts and limits. The connections belong to logins.
  readonly #uses = new Map<string, ScopeUse>()
  readonly #logins = new Map<string, LoginPool>()
  // The login each scope in use connects with, found on its first checkout.
  readonly #loginOf = new WeakMap<ScopeUse, LoginPool>()
  // The cluster of each login.
  readonly #clusterOf = new WeakMap<LoginPool, Cluster>()
  readonly #readers = new WeakSet<LoginPool>()
  readonly #budget: ConnectionBudget
  readonly #counters = newCounters()
  readonly #events: PoolEvents
  readonly #log: Log
  readonly #sweepTimer: NodeJS.Timeout
  // Scopes removed (evicted, expired) and logins ended whose sockets are still closing: end() waits.
  readonly #draining = new Set<Promise<void>>()
  readonly #validated: ValidatedScopes
  #lastSweep: number
  #ending: Promise<void> | undefined
  // When a statement or a ping last went unanswered: connections idle since before then are pinged
  // before they are handed out, whatever their idle time, since their server may be gone too.
  #suspectSince = -1
  // Invocations started (invocationStarted): a connection freed in an earlier one may have been
  // frozen since, however short the freeze, and always waits for pending socket events.
  #invocation = 0
  #roles: RoleLookup

  constructor(options: TenantPoolsOptions = {}) {
    this.#options = resolveOptions(options)
    const o = this.#options
    this.#log = o.logger ?? new Logger({ serviceName: 'tenant-pools' })
    this.#budget = new ConnectionBudget(
      o.budget,
      () => this.#freeIdleSlot(),
      () => o.clock.now(),
    )
    this.#clusters = buildClusters(
      options,
      o,
      this.#budget,
      (cluster) => this.#freeIdleSlot(cluster),
      (name) => this.#roleExists(name),
    )
    const shapes = new Map(
      [...this.#clusters.values()].map((c) => [c.name, { name: c.name, hasReader: c.reader !== undefined }]),
    )
    this.#validated = new ValidatedScopes(o.schemaFor, shapes, o.mainCluster)
    this.#events = poolEvents(this.#counters, this.#log, () => {
      let closed = 0
      for (const login of this.#logins.values()) closed += login.closeIdle()
      return closed
    })
    this.#lastSweep = o.clock.now()
    // Unref'd: an idle registry must not keep a process (or a test run) alive.
    this.#sweepTimer = setInterval(() => this.#sweep(o.clock.now()), o.sweepIntervalMs).unref()
    this.master = this.forMaster()
    this.#roles = new RoleLookup(
      async (role) => {
        const { rowCount } = await this.master.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])
        return (rowCount ?? 0) > 0
      },
      ROLE_LOOKUP_MAX_AGE_MS,
      o.clock,
    )
  }

  /** The master/catalog schema's database, with `limits` on each call (a deadline, a signal). */
  forMaster(limits: CallLimits = {}): TenantHandle {
    const scope: Scope = {
      key: MASTER_KEY,
      tenantId: null,
      app: null,
      schema: this.#options.masterSchema,
      cluster: this.#options.mainCluster,
      readOnly: false,
      onReader: false,
    }
    return this.#db(() => scope, limitsOf(limits))
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

  /** The names of the clusters this registry connects to; the main one first. */
  get clusterNames(): string[] {
    return [...this.#clusters.keys()]
  }

  /** The cluster the top-level settings describe (the master schema's). */
  get mainCluster(): string {
    return this.#options.mainCluster
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
  forTenant(tenantId: string, options: ScopeOptions = {}): TenantHandle {
    this.#scope(tenantId, options)
    return this.#db(() => this.#scope(tenantId, options), limitsOf(options))
  }

  /** Runs one statement on a pooled connection of the tenant's schema. */
  query<R extends QueryResultRow = QueryResultRow>(
    tenantId: string,
    text: string,
    values?: unknown[],
    options: ScopeOptions = NO_OPTIONS,
  ): Promise<QueryResult<R>> {
    // Not an async function: #query returns the promise of the async work, and every layer of
    // promises costs microtask hops on the warm path. An invalid tenant id still rejects, not throws.
    try {
      return this.#query<R>(this.#scope(tenantId, options), text, values, limitsOf(options))
    } catch (err) {
      return Promise.reject(err)
    }
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
    const pools: PoolStats[] = [...this.#uses.values()].map((u) => ({
      key: u.key,
      tenantId: u.scope.tenantId,
      app: u.scope.app,
      cluster: u.scope.cluster,
      readOnly: u.scope.readOnly,
      onReader: u.scope.onReader,
      total: u.idle + u.active,
      idle: u.idle,
      active: u.active,
      waiting: u.waiting,
      lastUsedAt: u.lastUsedAt,
    }))
    const logins = [...this.#logins.values()].map((l) => ({
      key: l.key,
      cluster: this.#clusterOf.get(l)?.name ?? this.#options.mainCluster,
      reader: this.#isReader(l),
      total: l.total,
      idle: l.idle,
      active: l.active,
      waiting: l.waiting,
    }))
    const sum = (f: (l: (typeof logins)[number]) => number) => logins.reduce((n, l) => n + f(l), 0)
    const clusters = [...this.#clusters.values()].map((c) => {
      const of = logins.filter((l) => l.cluster === c.name)
      const add = (f: (l: (typeof logins)[number]) => number) => of.reduce((n, l) => n + f(l), 0)
      return {
        name: c.name,
        total: add((l) => l.total),
        idle: add((l) => l.idle),
        active: add((l) => l.active),
        waiting: add((l) => l.waiting),
        cap: c.cap ?? null,
        readerSkipped: c.readerDownUntil > this.#options.clock.now(),
      }
    })
    return {
      pools,
      logins,
      clusters,
      totals: {
        pools: pools.length,
        total: sum((l) => l.total),
        idle: sum((l) => l.idle),
        active: sum((l) => l.active),
        waiting: sum((l) => l.waiting),
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
    // Validated (a cluster too, if named); then every scope of the tenant (or of its app) goes, on
    // whichever cluster and endpoint: a tenant that moved may have scopes on both.
    this.#scope(tenantId, options)
    const keys = [...this.#uses.values()]
      .filter(
        (u) => u.scope.tenantId === tenantId && (options.app === undefined || u.scope.app === options.app),
      )
      .map((u) => u.key)
    await Promise.all(keys.map((k) => this.#remove(k)))
    return keys.length
  }

  /** Closes every connection, including those of pools removed earlier. Later calls fail. Safe to call twice. */
  end(): Promise<void> {
    if (!this.#ending) {
      clearInterval(this.#sweepTimer)
      for (const key of [...this.#uses.keys()]) void this.#remove(key)
      for (const login of this.#logins.values()) this.#drain(login.end())
      this.#logins.clear()
      this.#ending = Promise.all(this.#draining).then(() => {})
    }
    return this.#ending
  }

  #scope(tenantId: string, { app, cluster, readOnly }: ScopeOptions): Scope {
    return this.#validated.scope(tenantId, app, cluster, readOnly)
  }

  #db(scope: () => Scope, limits: CallLimits): TenantHandle {
    return {
      query: async (text, values) => this.#query(scope(), text, values, limits),
      withClient: async (fn) => this.#withClient(scope(), fn, limits),
      transaction: async (fn) => this.#transaction(scope(), fn, limits),
      asPgPool: () =>
        new TenantPgPool({
          query: (query, values, observer) => this.#query(scope(), query, values, limits, observer),
          lease: () => this.#lease(scope(), limits),
        }),
    }
  }

  // A connection lent until its holder calls release() (TenantPgPool.connect): release() gives it
  // back to be reset before anyone uses it again, release(err) or release(true) destroys it.
  async #lease(scope: Scope, limits: CallLimits): Promise<PoolClient> {
    const got = this.#checkout(scope, limits)
    const { conn, login } = got instanceof Promise ? await got : got
    // pg's PoolClient is its Client with a release() set for each checkout, as pg-pool does.
    const client = conn.client as Client & Pick<PoolClient, 'release'>
    let released = false
    client.release = (err?: Error | boolean) => {
      if (released) throw new Error('Release called on a client which has already been released to the pool')
      released = true
      if (err) login.release(conn, err instanceof Error ? err : new Error('released to be destroyed'))
      else {
        forgetCallerListeners(conn.client)
        this.#releaseWhenReady(login, conn, undefined, true)
      }
    }
    return client
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
  #statementTimedOut(out: Checkout, err: StatementTimeoutError): never {
    this.#counters.statementTimeouts++
    out.conn.lost = true
    out.login.release(out.conn, err)
    this.#suspectSince = this.#options.clock.now()
    this.#log.warn('statement unanswered: connection destroyed', {
      poolKey: out.use.key,
      mayHaveRun: err.mayHaveRun,
    })
    throw err
  }

  // The first statement since a possible freeze got no answer at all within the validation timeout,
  // as an unanswered ping: its server is gone or unreachable, and so, likely, are the other idle
  // connections to it. The statement itself may have reached it: the caller is told so.
  #firstAnswerMissing(out: Checkout, err: ConnectionLostError): never {
    out.conn.lost = true
    out.login.release(out.conn, err)
    this.#serverSilent()
    this.#log.warn('first statement since a possible freeze unanswered: connection destroyed', {
      poolKey: out.use.key,
      mayHaveRun: err.mayHaveRun,
    })
    throw err
  }

  // Not async itself: the writer's path (the usual one) costs no extra promise.
  // `observer`: a pg.Pool handle's, told of the checkout and the release (its acquire and release events).
  #query<R extends QueryResultRow>(
    scope: Scope,
    text: string | QueryConfig,
    values: unknown[] | undefined,
    limits: CallLimits,
    observer?: CheckoutObserver,
  ): Promise<QueryResult<R>> {
    if (!scope.onReader) return this.#queryOn<R>(scope, text, values, limits, observer)
    return this.#queryOnReader<R>(scope, text, values, limits, observer)
  }

  async #queryOnReader<R extends QueryResultRow>(
    scope: Scope,
    text: string | QueryConfig,
    values: unknown[] | undefined,
    limits: CallLimits,
    observer: CheckoutObserver | undefined,
  ): Promise<QueryResult<R>> {
    try {
      return await this.#queryOn<R>(scope, text, values, limits, observer)
    } catch (err) {
      // A read that lost its replica mid-statement ran nowhere else: it is run again on the writer.
      if (!readerUnreachable(err)) throw err
      return this.#queryOn<R>(this.#readerFailed(scope, limits, err), text, values, limits, observer)
    }
  }

  async #queryOn<R extends QueryResultRow>(
    scope: Scope,
    query: string | QueryConfig,
    values: unknown[] | undefined,
    limits: CallLimits,
    observer?: CheckoutObserver,
    attempt = 1,
  ): Promise<QueryResult<R>> {
    // A config (pg's { text, rowMode, types, name }, as Drizzle sends through asPgPool) runs as given.
    const text = typeof query === 'string' ? query : query.text
    // A statement that may change the session gets a full reset before the connection's next use
    // (an addition only: isolation does not rest on recognising it). Whatever binding the session
    // needs first rides with the statement when it can (one round trip); one that may change the
    // session never carries one. Whether it can is asked only when a binding is due: the warm
    // path pays nothing for it.
    const reset = maybeChangesSession(text)
    // A named statement never rides either: pg may refuse to send it (a name reused with other text)
    // after the binding ahead of it was written.
    const named = typeof query !== 'string' && query.name !== undefined
    const got = this.#checkout(
      scope,
      limits,
      reset || named ? undefined : text,
      values ?? (typeof query === 'string' ? undefined : query.values),
    )
    // The warm path gets its connection without waiting: no await, no microtask hop.
    const out = got instanceof Promise ? await got : got
    const { conn, login, ride } = out
    const server = this.#options.statementTimeoutMs
    const own = server > 0 ? server + this.#options.statementTimeoutMarginMs : Number.POSITIVE_INFINITY
    const boundMs = Math.min(own, out.leftMs)
    // Made only when the timer fires: the warm path allocates no error. (An inline arrow: a named
    // one costs a defineProperty per call under tsx's keepNames.)
    let timedOut: StatementTimeoutError | undefined
    let silent: ConnectionLostError | undefined
    let result: QueryResult<R>
    // Freed before this invocation began: a freeze may lie between its last use and now.
    const crossed = conn.freedInInvocation !== this.#invocation
    const readBefore = bytesRead(conn.client)
    // The first statement since a possible freeze: whether a FATAL came before any answer to it.
    const watch = crossed ? new AnswerWatch(conn.client) : undefined
    try {
      observer?.acquired(conn.client as PoolClient)
      let running: Promise<QueryResult<R>>
      if (ride?.binds === 'reset') {
        // Its DEALLOCATE ALL runs before the statement: pg must not skip the Parse of a named one.
        forgetPreparedStatements(conn.client)
        const fromReadOnly = conn.startedReadOnly || conn.boundTo.leavesSettings
        const binds = out.use.resetStatements(fromReadOnly)
        running = boundQuery<R>(conn.client, binds, query, values, true, ride.probe)
      } else if (ride?.binds === 'assert') {
        // Committed first, as the reset is: a procedure's or DO block's ROLLBACK sharing its
        // transaction would undo it, and run the rest of its body under the caller's own path.
        running = boundQuery<R>(conn.client, out.use.assertStatements, query, values, true, ride.probe)
      } else if (ride?.probe) {
        running = boundQuery<R>(conn.client, [], query, values, false, true)
      } else {
        // Two calls: pg's overloads take a string or a config, not their union.
        running =
          typeof query === 'string'
            ? conn.client.query<R>(query, values)
            : conn.client.query<R>(query, values)
      }
      // The liveness check rides with the statement: the server's first answer must come within the
      // validation timeout, as a ping's would.
      if (ride?.probe) {
        this.#counters.connectionsPinged++
        const answered = () => bytesRead(conn.client) !== readBefore
        running = firstAnswerWithin(running, this.#options.validationTimeoutMs, answered, () => {
          silent = new ConnectionLostError(
            `No answer from the server within ${this.#options.validationTimeoutMs} ms (validationTimeoutMs) ` +
              `to the first statement on a connection of pool ${scope.key} since a possible freeze; it may have run`,
            { mayHaveRun: !scope.readOnly },
          )
          return silent
        })
      }
      result = await within(running, boundMs, () => {
        timedOut = new StatementTimeoutError(
          `No answer to a statement of pool ${scope.key} within ${Math.round(boundMs)} ms; it may have run`,
          true,
        )
        return timedOut
      })
      if (ride?.binds === 'reset') {
        // Committed ahead of the statement: the session is now the caller's scope's, and clean.
        this.#bound(conn, out.use, limits)
      }
    } catch (err) {
      watch?.stop()
      this.#statementRan(conn)
      try {
        observer?.released(err instanceof Error ? err : undefined, conn.client as PoolClient)
      } finally {
        if (timedOut !== undefined && err === timedOut) this.#statementTimedOut(out, timedOut)
        if (silent !== undefined && err === silent) this.#firstAnswerMissing(out, silent)
        // A statement that carried a reset and failed may or may not have left it committed (pg
        // reports some errors, a value it cannot serialize or a row it cannot parse, after the
        // server committed): the binding is unknown, so the next use resets and binds in full.
        if (ride?.binds === 'reset') conn.needsReset = true
        // A failed statement leaves the session clean (we ran nothing else on it): keep the
        // connection unless the connection itself broke. `dirty` covers a statement that opened a
        // transaction, once the server has said so.
        this.#releaseWhenReady(login, conn, isConnectionLost(err) || conn.lost ? err : undefined, reset)
      }
      // The first statement on a connection since a possible freeze met a reset before any byte of
      // an answer: its backend was gone (a freeze lost its FATAL and FIN, and the server answers
      // the write with an RST), and no live backend read it. It runs on another connection; a few
      // times at most, as every idle one may have died the same way. This assumes nothing between
      // here and the server forwards a statement and then resets the client (docs/behaviour.md, "Freeze
      // and thaw"); within an invocation a reset is reported (as may have run), never sent again.
      // Or its backend's FATAL came first (ended while the environment was frozen, the FATAL resent
      // by TCP after the thaw): that backend never read it, and whatever it might have begun its end
      // rolled back. Not a statement that may commit by itself (a procedure, a DO block) or that
      // the extended protocol cannot carry, where that could not be said.
      const unanswered =
        crossed &&
        ((isSocketReset(err) && bytesRead(conn.client) === readBefore) ||
          (endedSession(err) && watch?.answered === false && combinable(text, values)))
      if (unanswered && attempt <= UNANSWERED_RETRIES) {
        // Every connection idle since before now may have died the same way: each is pinged before
        // its next use, so the statement goes out on a live one.
        this.#suspectSince = this.#options.clock.now()
        this.#counters.connectionsReplaced++
        if (limits.measure) limits.measure.connectionsReplaced++
        return this.#queryOn<R>(scope, query, values, limits, observer, attempt + 1)
      }
      throw typed(err, conn, !unanswered && !scope.readOnly)
    }
    watch?.stop()
    this.#statementRan(conn)
    try {
      observer?.released(undefined, conn.client as PoolClient)
    } finally {
      this.#releaseWhenReady(login, conn, undefined, reset)
    }
    return result
  }

  // Gives a connection back once the server has answered everything sent on it. pg settles a
  // failed statement at its ErrorResponse, before the ReadyForQuery that tells the session's
  // transaction status (and after which the search_path report is complete), and a statement given
  // up on by pg's own query_timeout may still be running: released before then, the next caller's
  // statements would queue behind it, in whatever transaction it left open. It waits (within the
  // validation timeout, else the connection is destroyed); the usual case, already answered, costs
  // nothing.
  #releaseWhenReady(login: LoginPool, conn: PooledConnection, err: unknown, reset: boolean): void {
    if (err !== undefined || conn.lost || readyForQuery(conn.client)) {
      login.release(conn, err, reset)
      return
    }
    void untilReady(conn.client, this.#options.validationTimeoutMs).then((ready) =>
      login.release(conn, ready ? undefined : STALE, reset),
    )
  }

  // A caller's statement ran: on a server that does not report the search_path, it may now point
  // anywhere, and is asserted before the next statement. Not in proxy-safe mode, where no SET may
  // assert it and the role's privileges bound what a caller's own change can reach.
  #statementRan(conn: PooledConnection): void {
    if (conn.reportedSearchPath === undefined && !this.#options.proxySafe) conn.searchPathUnknown = true
  }

  // The session was reset in full and bound to `use`.
  #bound(conn: PooledConnection, use: ScopeUse, limits: CallLimits): void {
    conn.needsReset = false
    conn.searchPathUnknown = false
    if (conn.boundTo !== use) {
      conn.boundTo = use
      this.#counters.connectionsRebound++
      if (limits.measure) limits.measure.connectionsRebound++
    } else this.#counters.sessionsReset++
  }

  async #withClient<T>(
    scope: Scope,
    fn: (client: ClientBase) => Promise<T>,
    limits: CallLimits,
    commit?: { sent: boolean },
  ): Promise<T> {
    const got = this.#checkout(scope, limits)
    const out = got instanceof Promise ? await got : got
    const { conn, login, leftMs: boundMs } = out
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
      result = await within(
        holding(() => fn(conn.client)),
        boundMs,
        outOfTime,
      )
    } catch (err) {
      if (timedOut !== undefined && err === timedOut) this.#statementTimedOut(out, timedOut)
      // The handler may have left session state behind; a fresh connection is cheaper than a leak.
      login.release(conn, err ?? new Error('withClient callback threw a nullish value'))
      // A transaction whose COMMIT was never sent cannot have committed.
      throw typed(err, conn, !scope.readOnly && (commit === undefined || commit.sent))
    }
    // Whatever the callback did to the session is undone before anyone, this scope included, uses
    // the connection again, and what it listened to on the client is no longer heard.
    forgetCallerListeners(conn.client)
    this.#releaseWhenReady(login, conn, undefined, true)
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

  // Hands out a live connection whose session is bound to the scope and clean. One bound to another
  // scope, or left with a caller's state, is reset and rebound in one round trip, which also proves
  // it alive. One idle for a while (a thawed environment, say) is checked first. A dead one is
  // discarded and another taken, before any statement of the caller has run.
  // `text` (with `values`): the caller's statement, which may carry a rebind (see bound-query.ts);
  // undefined when there is none or it must not.
  // The checkout itself when nothing needs waiting for (the warm path: an idle connection bound to
  // the scope, used moments ago), else a promise of it. The callers are async functions: what this
  // throws, they reject with, as the waiting path would.
  #checkout(
    scope: Scope,
    limits: CallLimits,
    text?: string,
    values?: unknown[],
  ): Checkout | Promise<Checkout> {
    if (!scope.onReader) return this.#checkoutOn(scope, limits, text, values)
    return this.#checkoutOnReader(scope, limits, text, values)
  }

  // A reader's scope: on the writer while its reader is skipped, and sent there when it fails.
  async #checkoutOnReader(
    scope: Scope,
    limits: CallLimits,
    text?: string,
    values?: unknown[],
  ): Promise<Checkout> {
    const cluster = this.#clusters.get(scope.cluster) as Cluster
    if (cluster.readerDownUntil > this.#options.clock.now()) {
      return this.#checkoutOn(this.#writerFor(scope, limits), limits, text, values)
    }
    try {
      return await this.#checkoutOn(scope, limits, text, values)
    } catch (err) {
      if (!readerUnreachable(err)) throw err
      return this.#checkoutOn(this.#readerFailed(scope, limits, err), limits, text, values)
    }
  }

  // The reader of `scope`'s cluster could not be reached: it is skipped for readerRetryAfterMs, and
  // the call goes to the writer, in a read-only session. Returns the writer's scope.
  #readerFailed(scope: Scope, limits: CallLimits, err: unknown): Scope {
    const cluster = this.#clusters.get(scope.cluster) as Cluster
    const now = this.#options.clock.now()
    if (cluster.readerDownUntil <= now) {
      this.#log.warn('reader unreachable: read-only calls go to the writer for now', {
        cluster: cluster.name,
        retryAfterMs: this.#options.readerRetryAfterMs,
        sqlState: sqlState(err),
        error: err instanceof TenantPoolsError ? err.code : undefined,
      })
    }
    cluster.readerDownUntil = now + this.#options.readerRetryAfterMs
    return this.#writerFor(scope, limits)
  }

  #writerFor(scope: Scope, limits: CallLimits): Scope {
    this.#counters.readerFallbacks++
    if (limits.measure) limits.measure.readerFallbacks++
    return this.#validated.variant(scope, scope.cluster, 'read-only')
  }

  #checkoutOn(
    scope: Scope,
    limits: CallLimits,
    text?: string,
    values?: unknown[],
  ): Checkout | Promise<Checkout> {
    if (this.#ending) throw new PoolsEndedError('TenantPools has been ended: build a new instance')
    // Taken before the first await, while the caller's frames are still on the stack.
    const acquiredAt =
      this.#options.leakDetectionMs > 0 ? new Error('connection acquired here').stack : undefined
    const now = this.#options.clock.now()
    // Timers don't run while an environment is frozen, so calls sweep too (at most once an interval).
    if (now - this.#lastSweep >= this.#options.sweepIntervalMs) this.#sweep(now)
    const use = this.#useFor(scope)
    const login = this.#loginOf.get(use) ?? this.#staticLogin(use)
    if (login) {
      // As #acquire: nothing is taken once the deadline has passed.
      this.#remaining(limits, 'it got a connection')
      const conn = login.acquireNow(use, now)
      if (conn) {
        const ready = this.#readyOrRelease(login, use, conn, limits, now, text, values)
        if (ready instanceof Promise) {
          return this.#checkoutAsync(scope, use, login, limits, now, acquiredAt, text, values, conn, ready)
        }
        if (ready) return this.#checkedOut(scope, use, login, conn, ready, limits, 0, acquiredAt)
        this.#replace(login, conn, limits)
      }
    }
    return this.#checkoutAsync(scope, use, login, limits, now, acquiredAt, text, values)
  }

  // The rest of a checkout that has to wait: for the scope's login, a connection, or its check
  // (`conn` taken already, with its `pending` check).
  async #checkoutAsync(
    scope: Scope,
    use: ScopeUse,
    found: LoginPool | undefined,
    limits: CallLimits,
    now: number,
    acquiredAt: string | undefined,
    text: string | undefined,
    values: unknown[] | undefined,
    conn?: PooledConnection,
    pending?: Promise<Readiness>,
  ): Promise<Checkout> {
    let login = found
    if (!login) {
      // While the login is looked up, the scope is in use: LRU and TTL must not end it meanwhile.
      use.arriving++
      try {
        login = await this.#findLogin(use, limits)
      } finally {
        use.arriving--
      }
    }
    let taken = conn
    let check: Readiness | Promise<Readiness> | undefined = pending
    for (;;) {
      if (taken === undefined || check === undefined) {
        taken = await this.#acquire(login, use, limits)
        check = this.#readyOrRelease(login, use, taken, limits, this.#options.clock.now(), text, values)
      }
      const ready = await check
      if (ready) {
        const waitedMs = this.#options.clock.now() - now
        return this.#checkedOut(scope, use, login, taken, ready, limits, waitedMs, acquiredAt)
      }
      this.#replace(login, taken, limits)
      taken = undefined
    }
  }

  // A connection ready for the caller: counted, watched for leaks if asked, and handed over with
  // what remains of the deadline for the caller's statements (none left: the connection goes back).
  #checkedOut(
    scope: Scope,
    use: ScopeUse,
    login: LoginPool,
    conn: PooledConnection,
    ready: Readiness,
    limits: CallLimits,
    waitedMs: number,
    acquiredAt: string | undefined,
  ): Checkout {
    let leftMs: number
    try {
      leftMs = this.#remaining(limits, 'its first statement was sent')
    } catch (err) {
      login.release(conn)
      throw err
    }
    // Its first checkout: opened for this call (or for another's, and given to this one).
    const opened = conn.checkouts++ === 0
    this.#counters.checkouts++
    this.#counters.acquireWaitMs += waitedMs
    const m = limits.measure
    if (m) {
      m.checkouts++
      m.acquireWaitMs += waitedMs
      if (opened) m.connectionsOpened++
      else m.connectionsReused++
    }
    if (acquiredAt !== undefined) this.#watchForLeak(scope.key, conn, acquiredAt)
    return { login, use, conn, leftMs, ride: typeof ready === 'object' ? ready : undefined }
  }

  // Found dead on checkout: destroyed, and another one taken.
  #replace(login: LoginPool, conn: PooledConnection, limits: CallLimits): void {
    this.#counters.connectionsReplaced++
    if (limits.measure) limits.measure.connectionsReplaced++
    login.release(conn, STALE)
  }

  // Whether `conn` may be handed to `use` as it is, once reset or its binding asserted if it needs
  // it. A deadline that passes meanwhile must not strand the connection: it goes back first. Decided
  // at once when no round trip or poll phase is needed (the warm path), else a promise. RIDE_RESET
  // or RIDE_ASSERT: the caller's statement can carry what is due in its own round trip.
  #readyOrRelease(
    login: LoginPool,
    use: ScopeUse,
    conn: PooledConnection,
    limits: CallLimits,
    now: number,
    text: string | undefined,
    values: unknown[] | undefined,
  ): Readiness | Promise<Readiness> {
    // `lost` is set synchronously by the error event, so checking it costs nothing. Even a fresh
    // connection can arrive dead: frozen mid-connect, its FATAL was read with its ReadyForQuery.
    if (conn.lost) return false
    // Every connection reaches a caller through the pool's offer, which stamps idleSince, a new one too.
    const idleFor = now - conn.idleSince
    // Idle since before a statement or ping went unanswered: its server may be gone too.
    const suspect = conn.idleSince <= this.#suspectSince
    const crossed = conn.freedInInvocation !== this.#invocation
    // A connection handed to a caller's callback (withClient, transaction, a pg.Pool client) that
    // was freed before this invocation began is pinged: a freeze may have lost its server's FATAL,
    // and nothing could send the callback's first statement again. A query() needs no ping: one that
    // meets such a dead socket is sent again (#queryOn).
    let ping = suspect || idleFor >= this.#options.validateAfterIdleMs || (text === undefined && crossed)
    // A query() on such a connection, idle long enough to be pinged, carries the ping instead: the
    // server's first answer must come within the validation timeout (#queryOn). The round trip is
    // saved at every thaw; the price is paid only where the server went silent during the freeze,
    // where the statement may have reached it and the caller is told so, not given a fresh connection.
    let probe = false
    if (
      ping &&
      crossed &&
      !suspect &&
      text !== undefined &&
      !this.#options.proxySafe &&
      combinable(text, values)
    ) {
      ping = false
      probe = true
    }
    const settle = idleFor >= SETTLE_AFTER_IDLE_MS || crossed
    // A session leaves its scope only through a full reset: nothing a caller left in it (a temporary
    // relation, a setting, a role, a cursor, a lock) reaches another scope's caller. Within the
    // scope, the search_path is verified (as the server reported it) or else asserted.
    if (conn.boundTo !== use) conn.needsReset = true
    else if (conn.reportedSearchPath !== undefined && !conn.needsReset && conn.searchPathHoldsFor !== use) {
      const holds = this.#reportedSearchPathHolds(conn, use)
      if (holds) conn.searchPathHoldsFor = use
      // Proxy-safe mode cannot assert it with a SET: it resets, and the role's setting holds again.
      if (!holds && this.#options.proxySafe) conn.needsReset = true
      else conn.searchPathUnknown = !holds
    }
    // Writes allowed as the scope says: a caller's RESET ALL returns default_transaction_read_only to
    // the startup packet's value, a read-only scope's if one opened the connection. A replica
    // refuses writes by itself; in proxy-safe mode the role says, and no SET may.
    if (
      conn.reportedReadOnly !== undefined &&
      !conn.needsReset &&
      conn.readOnlyHoldsFor !== use &&
      !this.#options.proxySafe
    ) {
      if (use.scope.onReader || (conn.reportedReadOnly === 'on') === use.leavesSettings)
        conn.readOnlyHoldsFor = use
      else conn.needsReset = true
    }
    const due = conn.needsReset ? RIDE_RESET : conn.searchPathUnknown ? RIDE_ASSERT : undefined
    if (due !== undefined) {
      // It rides with the statement unless the connection needs a ping first, or the reset binds a
      // read-only scope: its SET would only make the *next* transaction read-only, and in one simple
      // query the statement shares the SET's.
      if (
        !ping &&
        !this.#options.proxySafe &&
        text !== undefined &&
        !(due === RIDE_RESET && use.leavesSettings) &&
        combinable(text, values)
      ) {
        const ride = probe ? probed(due) : due
        if (!settle) return ride
        return this.#releasedIfThrows(login, conn, this.#isAlive(conn, false, limits), ride)
      }
      return this.#releasedIfThrows(login, conn, this.#reset(conn, use, due === RIDE_RESET, limits), true)
    }
    if (probe) return this.#releasedIfThrows(login, conn, this.#isAlive(conn, false, limits), RIDE_PROBE)
    if (!settle && !suspect) return true
    return this.#releasedIfThrows(login, conn, this.#isAlive(conn, ping, limits), true)
  }

  // Whether the search_path the server last reported (PostgreSQL 18 and later report it whenever a
  // statement changed it) is still the one the binding set. On a server that does not report it,
  // searchPathUnknown tells instead: a caller's statement ran since it was last set.
  #reportedSearchPathHolds(conn: PooledConnection, use: ScopeUse): boolean {
    // Proxy-safe: the role sets it; it holds while it is what the server reported after the reset
    // (or at startup: the first report sets searchPathAtBind too).
    if (this.#options.proxySafe) return conn.reportedSearchPath === conn.searchPathAtBind
    return searchPathSelects(conn.reportedSearchPath, use.scope.schema)
  }

  async #releasedIfThrows(
    login: LoginPool,
    conn: PooledConnection,
    check: Promise<boolean>,
    ok: Readiness,
  ): Promise<Readiness> {
    try {
      return (await check) && ok
    } catch (err) {
      login.release(conn, STALE)
      throw err
    }
  }

  // One round trip: everything a caller may have left in the session is discarded and it is bound
  // to `use` (`full`), or only its search_path is set again. It doubles as a liveness ping: a FATAL
  // that waits unread in the socket (a thaw) fails it, before any statement of the caller was sent.
  async #reset(conn: PooledConnection, use: ScopeUse, full: boolean, limits: CallLimits): Promise<boolean> {
    let sql: string
    if (this.#options.proxySafe) sql = PROXY_SAFE_RESET_SQL
    else if (!full) sql = use.assertStatements.join('; ')
    else sql = use.resetSql(conn.startedReadOnly || conn.boundTo.leavesSettings)
    // DEALLOCATE ALL drops the server's prepared statements: pg must forget them too.
    if (full) forgetPreparedStatements(conn.client)
    const ok = await this.#probe(conn, sql, limits)
    if (!ok) return false
    conn.searchPathAtBind = conn.reportedSearchPath
    if (full) this.#bound(conn, use, limits)
    else conn.searchPathUnknown = false
    return true
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
  async #acquire(login: LoginPool, use: ScopeUse, limits: CallLimits): Promise<PooledConnection> {
    const left = this.#remaining(limits, 'it got a connection')
    const waitMs = Math.min(this.#options.connectTimeoutMs, left)
    try {
      return await login.acquire(use, {
        waitMs,
        deadlineBound: left < this.#options.connectTimeoutMs,
        signal: limits.signal,
      })
    } catch (err) {
      if (err instanceof DeadlineExceededError) this.#counters.deadlinesExceeded++
      const holds = heldByThisCall()
      if (err instanceof PoolExhaustedError && holds > 0) {
        // The usual cause: a checkout inside a withClient/transaction callback, waiting for a
        // connection that only the callback's own return would free.
        throw new PoolExhaustedError(
          `A checkout for pool ${use.key} while this call already holds ${holds} connection(s) ` +
            '(a query inside a withClient or transaction callback) found none free: use the ' +
            "callback's client instead of the registry inside it. " +
            err.message,
          { cause: err },
        )
      }
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
    return this.#probe(conn, 'SELECT 1', limits)
  }

  // Runs `sql` within the validation timeout (or what remains of the deadline). No answer: the
  // server answers nothing, and every idle connection to it would cost the caller the same wait, so
  // they are closed now rather than tried one by one.
  async #probe(conn: PooledConnection, sql: string, limits: CallLimits): Promise<boolean> {
    const boundMs = Math.min(
      this.#options.validationTimeoutMs,
      this.#remaining(limits, 'it got a connection'),
    )
    // Made only when the timer fires: an Error captures a stack, which the warm path cannot afford.
    let unanswered: Error | undefined
    const noAnswer = () => {
      unanswered = new Error('liveness check unanswered')
      return unanswered
    }
    try {
      await within(conn.client.query(sql), boundMs, noAnswer)
      return true
    } catch (err) {
      if (unanswered !== undefined && err === unanswered) this.#serverSilent()
      return false
    }
  }

  // A liveness check went unanswered: every connection idle since before now is pinged before its
  // next use, and the idle ones, which would each cost a caller the same wait, are closed now.
  #serverSilent(): void {
    this.#counters.validationTimeouts++
    this.#suspectSince = this.#options.clock.now()
    for (const login of this.#logins.values()) login.closeIdle()
  }

  #useFor(scope: Scope): ScopeUse {
    const existing = this.#uses.get(scope.key)
    if (existing) return existing
    if (scope.key !== MASTER_KEY) this.#makeRoomForScope()
    const use = new ScopeUse(
      scope,
      applicationNameFor(this.#options.applicationNamePrefix, scope.key),
      this.#options.clock.now(),
    )
    this.#uses.set(scope.key, use)
    this.#counters.poolsCreated++
    return use
  }

  // Whether a role named `name` exists. Asked on the main cluster, where a tenant's own role is
  // made: a credentials provider must not let such a tenant borrow a shared login.
  #roleExists(name: string): Promise<boolean> {
    return this.#roles.exists(name)
  }

  // A scope's login: the endpoint, database and user it connects with. Scopes of one login share its
  // connections. In proxy-safe mode the role carries the schema, so each scope is a login of its own.
  // The user comes from the credentials provider (cached there), asked once per scope.
  async #findLogin(use: ScopeUse, limits: CallLimits): Promise<LoginPool> {
    const { cluster, endpoint } = this.#endpointOf(use)
    let key: string
    if (this.#options.proxySafe) {
      key = `${endpoint.address}|scope:${use.key}`
    } else {
      let user: string
      // Bounded as a connect is: a provider that never answers must not hold the caller.
      const ms = Math.min(this.#options.connectTimeoutMs, this.#remaining(limits, 'it got a connection'))
      let slow: ConnectError | undefined
      const tooSlow = () => {
        slow = new ConnectError(
          `Opening a connection for pool ${use.key} took longer than ${Math.round(ms)} ms: the credentials provider did not answer`,
        )
        return slow
      }
      try {
        ;({ user } = await within(
          endpoint.factory.credentials(credentialsRequest(use.scope, endpoint.factory)),
          ms,
          tooSlow,
        ))
      } catch (err) {
        if (slow !== undefined && err === slow) throw err
        throw new CredentialsError(`The credentials provider failed for pool ${use.key}`, { cause: err })
      }
      key = `${endpoint.address}|${user}`
    }
    if (this.#ending) throw new PoolsEndedError('TenantPools has been ended: build a new instance')
    return this.#attach(use, key, cluster, endpoint)
  }

  // The cluster a scope connects to, and which of its endpoints.
  #endpointOf(use: ScopeUse): { cluster: Cluster; endpoint: Endpoint } {
    const cluster = this.#clusters.get(use.scope.cluster) as Cluster
    const endpoint = use.scope.onReader ? (cluster.reader as Endpoint) : cluster.writer
    return { cluster, endpoint }
  }

  #isReader(login: LoginPool): boolean {
    return this.#readers.has(login)
  }

  // Without a credentials provider every scope logs in as the configured user: one login, known
  // without asking anyone.
  #staticLogin(use: ScopeUse): LoginPool | undefined {
    const { cluster, endpoint } = this.#endpointOf(use)
    if (endpoint.staticLoginKey === undefined) return undefined
    return this.#attach(use, endpoint.staticLoginKey, cluster, endpoint)
  }

  // The scope connects through login `key` from now on (made on first use).
  #attach(use: ScopeUse, key: string, cluster: Cluster, endpoint: Endpoint): LoginPool {
    const login = this.#logins.get(key) ?? this.#newLogin(key, cluster, endpoint)
    this.#loginOf.set(use, login)
    return login
  }

  #newLogin(key: string, cluster: Cluster, endpoint: Endpoint): LoginPool {
    const o = this.#options
    const login = new LoginPool({
      key,
      maxPerScope: o.maxPerPool,
      idleTimeoutMs: o.idleTimeoutMs,
      maxLifetimeMs: o.maxLifetimeMs,
      connectTimeoutMs: o.connectTimeoutMs,
      budget: cluster.budget,
      clock: o.clock,
      events: this.#events,
      invocation: () => this.#invocation,
      createClient: connector(endpoint.factory),
      verify: o.proxySafe ? (client, use) => this.#verifySchema(client, use.scope) : undefined,
    })
    this.#logins.set(key, login)
    this.#clusterOf.set(login, cluster)
    if (endpoint === cluster.reader) this.#readers.add(login)
    return login
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

  // Past maxPools scopes, the least recently used one with no call in flight is ended. If every
  // scope is busy the registry goes over the limit for now rather than cut a running call short.
  #makeRoomForScope(): void {
    // One pass, no arrays: with more tenants than maxPools this runs on many requests.
    let tenantScopes = 0
    let victim: ScopeUse | undefined
    for (const u of this.#uses.values()) {
      if (u.key === MASTER_KEY) continue
      tenantScopes++
      if (u.quiet && (!victim || u.lastUse < victim.lastUse)) victim = u
    }
    if (tenantScopes < this.#options.maxPools) return
    if (!victim) {
      this.#log.warn('maxPools exceeded: every pool has a call in flight', {
        maxPools: this.#options.maxPools,
      })
      return
    }
    this.#counters.poolsEvicted++
    void this.#remove(victim.key, false)
  }

  // The budget (or a cluster's cap) is spent and a login needs a connection: close the connection
  // idle longest, of any login (of that cluster).
  #freeIdleSlot(cluster?: string): void {
    let victim: LoginPool | undefined
    for (const login of this.#logins.values()) {
      if (cluster !== undefined && this.#clusterOf.get(login)?.name !== cluster) continue
      const since = login.oldestIdleSince
      if (since !== undefined && (victim === undefined || since < (victim.oldestIdleSince as number))) {
        victim = login
      }
    }
    victim?.closeOldestIdle()
  }

  #sweep(now: number): void {
    this.#lastSweep = now
    for (const login of this.#logins.values()) login.sweep(now)
    for (const use of [...this.#uses.values()]) {
      if (use.quiet && now - use.lastUsedAt >= this.#options.poolTtlMs) {
        this.#counters.poolsExpired++
        void this.#remove(use.key, false)
      }
    }
    // A login no scope uses any more, with nothing open, is forgotten (per-tenant roles come and go).
    const inUse = new Set<LoginPool>()
    for (const use of this.#uses.values()) {
      const login = this.#loginOf.get(use)
      if (login) inUse.add(login)
    }
    for (const [key, login] of this.#logins) {
      if (!inUse.has(login) && login.quiet && login.total === 0) {
        this.#logins.delete(key)
        this.#drain(login.end())
      }
    }
  }

  // Evicted (`closeIdle`: its connections close, the tenant may be gone) or retired by LRU or TTL
  // (its idle connections stay, to be rebound to whichever scope needs one next).
  #remove(key: string, closeIdle = true): Promise<void> {
    const use = this.#uses.get(key)
    if (!use) return Promise.resolve()
    this.#uses.delete(key)
    const login = this.#loginOf.get(use)
    if (!login) {
      use.ended = true
      return Promise.resolve()
    }
    return this.#drain(login.endScope(use, closeIdle))
  }

  #drain(ended: Promise<void>): Promise<void> {
    this.#draining.add(ended)
    void ended.then(() => this.#draining.delete(ended))
    return ended
  }
}

/** A checked-out connection, its login, and what remains of the call's deadline. */
interface Checkout {
  login: LoginPool
  use: ScopeUse
  conn: PooledConnection
  leftMs: number
  /** What the statement must carry ahead of it: a full reset and rebind, or its search_path. */
  ride: Ride | undefined
}

/** What a statement carries ahead of it in its own round trip. */
interface Ride {
  /** A full reset and the binding to its scope (`reset`), or its scope's search_path (`assert`). */
  readonly binds: 'reset' | 'assert' | undefined
  /** The liveness check: the server's first answer must come within the validation timeout. */
  readonly probe: boolean
}
const ride = (binds: Ride['binds'], probe: boolean): Ride => Object.freeze({ binds, probe })
const RIDE_RESET = ride('reset', false)
const RIDE_ASSERT = ride('assert', false)
const RIDE_PROBE = ride(undefined, true)
const RIDE_RESET_PROBE = ride('reset', true)
const RIDE_ASSERT_PROBE = ride('assert', true)
const probed = (r: Ride): Ride => (r === RIDE_RESET ? RIDE_RESET_PROBE : RIDE_ASSERT_PROBE)
type Readiness = boolean | Ride

// An immediate runs in the check phase of the current loop turn, before the next poll phase; one
// scheduled from there runs in the next turn's check phase, after that poll phase has read the sockets.
const settleOnePollPhase = () => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)))

const NO_OPTIONS: ScopeOptions = Object.freeze({})
const NO_LIMITS: CallLimits = Object.freeze({})

// Without bounds (the usual call), one shared object: the warm path allocates none.
const limitsOf = ({ deadline, signal, measure }: CallLimits): CallLimits =>
  deadline === undefined && signal === undefined && measure === undefined
    ? NO_LIMITS
    : { deadline, signal, measure }

// A holder's listeners for what the server sends unasked (a NOTIFY, a NOTICE) go with its lease:
// the next scope's session must not reach them. The library listens to neither.
const forgetCallerListeners = (client: Client): void => {
  client.removeAllListeners('notification')
  client.removeAllListeners('notice')
}

// pg's Client knows whether its last query has had its ReadyForQuery; @types/pg does not declare it.
const readyForQuery = (client: Client): boolean =>
  (client as unknown as { readyForQuery?: boolean }).readyForQuery !== false

// Resolves true at the client's next ReadyForQuery, false if the connection ends or `ms` pass first.
function untilReady(client: Client, ms: number): Promise<boolean> {
  const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer)
      connection.off('readyForQuery', onReady)
      connection.off('end', onEnd)
      resolve(ready)
    }
    // Registered after pg's own listener: the client's transaction status is current when it runs.
    const onReady = () => done(true)
    const onEnd = () => done(false)
    const timer = setTimeout(() => done(false), ms)
    connection.on('readyForQuery', onReady)
    connection.on('end', onEnd)
  })
}

// An error from a connection that is now lost, with no SQLSTATE or a socket's code (ECONNRESET,
// EPIPE, ETIMEDOUT, EHOSTUNREACH, an unexpected end), is the loss itself. It may have run unless
// the call could not write or nothing of it reached a live backend.
const typed = (err: unknown, conn: PooledConnection, mayHaveRun = true): unknown =>
  conn.lost && !(err instanceof TenantPoolsError) && (sqlState(err) === undefined || isSocketLost(err))
    ? new ConnectionLostError('The connection to the database was lost during the call', {
        cause: err,
        mayHaveRun,
      })
    : err

// The server ended the session (terminated, timed out, shut down) and said so at FATAL.
const endedSession = (err: unknown): boolean =>
  isServerKill(err) && (err as { severity?: unknown }).severity === 'FATAL'

// Bytes the connection's socket has read so far: unchanged across a statement, nothing of its
// answer arrived.
const bytesRead = (client: Client): number | undefined =>
  (client as unknown as { connection?: { stream?: { bytesRead?: number } } }).connection?.stream?.bytesRead

// The reader could not be reached or dropped the call: connecting failed, the connection died, or
// the replica is starting up or cancelled the read for a conflict with recovery.
const readerUnreachable = (err: unknown): boolean =>
  err instanceof ConnectError ||
  err instanceof ConnectionLostError ||
  isConnectionLost(err) ||
  sqlState(err) === '57P03' ||
  sqlState(err) === '40001'
