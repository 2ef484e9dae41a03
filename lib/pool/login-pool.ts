// The physical connections of one login (endpoint, database and user), shared by every scope that
// logs in the same way. A scope takes an idle connection already bound to it if there is one, else
// an idle one that served its schema before, else the idle one that served the fewest schemas (the
// registry rebinds it in one round trip), else a new one within the environment's budget, else it
// waits. A connection that has served maxSchemasPerConnection schemas takes no new one and is closed
// at its release; with keepFullConnection, the first such is kept for the schemas its backend holds.
// Not pg.Pool: every connection here must first win a slot of the environment-wide budget, the
// registry must be able to close another login's idle connection to free one, and a per-scope
// limit applies to connections in use. pg.Pool offers none of that without reaching into it.
import type { Client } from 'pg'
import { hiddenCredentials } from '../credentials/hidden'
import {
  ConnectError,
  DeadlineExceededError,
  PoolExhaustedError,
  PoolsEndedError,
  TenantPoolsError,
} from '../errors'
import {
  INVALID_PASSWORD,
  isServerKill,
  PROTOCOL_VIOLATION,
  sqlState,
  TOO_MANY_CONNECTIONS,
} from '../sqlstate'
import type { Clock, Credentials, PoolEvents, PrewarmOutcome } from '../types'
import type { BudgetClaimant } from './budget'
import type { Budget } from './capped-budget'
import { closeClient, PooledConnection } from './connection'
import type { ScopeUse } from './scope-use'

export interface LoginPoolConfig {
  key: string
  /** Connections one scope's calls may hold at once. */
  maxPerScope: number
  idleTimeoutMs: number
  maxLifetimeMs: number
  /** Distinct schemas a connection may serve before it is closed at its release; 0: no bound. */
  maxSchemasPerConnection: number
  /** The first connection to reach maxSchemasPerConnection is kept for the schemas it served. */
  keepFullConnection: boolean
  connectTimeoutMs: number
  budget: Budget
  clock: Clock
  events: PoolEvents
  /** The registry's invocation count (see TenantPools.invocationStarted). */
  invocation: () => number
  /** A configured, not yet connected client for `scope`; given `refused` credentials, fresh ones are fetched. */
  createClient: (
    scope: ScopeUse,
    refused?: Credentials,
  ) => Promise<{ client: Client; credentials: Credentials }>
  /** Runs once on each new connection before first use; a throw discards the connection. */
  verify?: (client: Client, scope: ScopeUse) => Promise<void>
}

// A graceful close takes a round trip; a peer that doesn't answer gets a quarter of the connect
// timeout, leaving the rest of a waiting caller's timeout for the connection that replaces it.
const closeTimeout = (connectTimeoutMs: number) => Math.max(100, Math.floor(connectTimeoutMs / 4))

// Backoff when the server is full: 25 ms doubling per retry, capped at 400 ms, fully jittered.
const BACKOFF_BASE_MS = 25
const BACKOFF_CAP_MS = 400
const SERVER_FULL = new Set([TOO_MANY_CONNECTIONS, '57P03'])
// A login refused: 28P01 from PostgreSQL; PgBouncer (as RDS Proxy, a pooler in front) reports its own
// authentication failures as 08P01. Either way, the credentials are refreshed and tried once more;
// another 08P01 at login (an unsupported startup parameter, say) fails the same way twice.
const LOGIN_REFUSED = new Set([INVALID_PASSWORD, PROTOCOL_VIOLATION])
// A new backend the server ended while it logged in (57P01 terminated, 57P02 crashed, 57P05 timed
// out): killed during a freeze, a failover or a purge of this application's sessions. It says nothing
// about the next one, so one fresh attempt follows within the same deadline.
const KILLED_AT_LOGIN_RETRIES = 1

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

// A prewarm's connection, parked idle or handed straight to a caller who came meanwhile.
const OPENED: PrewarmOutcome = Object.freeze({ outcome: 'opened' })
const OPENED_HANDED_OVER: PrewarmOutcome = Object.freeze({ outcome: 'opened', handedOver: true })

// A prewarm whose budget claim is being made: the slot it wins opens a connection for no caller.
interface Prewarm {
  scope: ScopeUse
  done: (outcome: PrewarmOutcome) => void
}

interface Waiter {
  scope: ScopeUse
  resolve: (conn: PooledConnection) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
  since: number
  /** The caller's deadline, not the connect timeout, bounds this wait. */
  deadlineBound: boolean
  signal?: AbortSignal
  onAbort?: () => void
}

/** One connection as stats() shows it. */
export interface ConnectionInfo {
  /** The scope its session is bound to. */
  scope: string
  /** Distinct schemas it has served (see maxSchemasPerConnection). */
  schemasServed: number
  idle: boolean
}

/** How long one checkout may wait; by default the connect timeout. */
export interface AcquireLimits {
  waitMs: number
  /** The wait was cut short by the caller's deadline: its timeout is a DeadlineExceededError. */
  deadlineBound: boolean
  signal?: AbortSignal
}

export class LoginPool implements BudgetClaimant {
  readonly key: string
  lastUsedAt: number
  readonly #config: LoginPoolConfig
  // Every connected connection, idle or checked out.
  readonly #all = new Set<PooledConnection>()
  // Least recently freed first: a bound hit takes the newest; a rebind, of the ones that served as
  // few schemas, the one idle longest.
  readonly #idle: PooledConnection[] = []
  readonly #waiters: Waiter[] = []
  #opening = 0
  // Sockets still closing (and late connection attempts): end() waits for them.
  #closing = 0
  #claims = 0
  #ending = false
  #prewarm: Prewarm | undefined
  // The one connection at maxSchemasPerConnection kept open: see #offer.
  #keeper: PooledConnection | undefined
  readonly #onDrained: Array<() => void> = []

  constructor(config: LoginPoolConfig) {
    this.#config = config
    this.key = config.key
    this.lastUsedAt = config.clock.now()
  }

  // A quarter of the connect timeout: a starving login is served well before its callers time out.
  get #fairnessWaitMs(): number {
    return this.#config.connectTimeoutMs / 4
  }

  get total(): number {
    return this.#all.size + this.#opening
  }

  get idle(): number {
    return this.#idle.length
  }

  get waiting(): number {
    return this.#waiters.length
  }

  get active(): number {
    return this.#all.size - this.#idle.length
  }

  /** No caller holds or awaits a connection: safe to end without cutting work short. */
  get quiet(): boolean {
    return this.active === 0 && this.#waiters.length === 0 && this.#opening === 0
  }

  /** Each connected connection, for stats(): its scope, the schemas it served, whether it is idle. */
  connections(): ConnectionInfo[] {
    const out: ConnectionInfo[] = []
    for (const conn of this.#all) {
      out.push({
        scope: conn.boundTo.key,
        schemasServed: conn.schemasServed.size,
        idle: this.#idle.includes(conn),
      })
    }
    return out
  }

  /**
   * Checks out a connection for `scope`: an idle one bound to it, else an idle one to rebind (one
   * that served its schema, else one that served the fewest), else waits up to the connect timeout
   * (or `limits`) for one freed or opened.
   */
  acquire(scope: ScopeUse, limits?: AcquireLimits): Promise<PooledConnection> {
    const now = this.#config.clock.now()
    const idle = this.acquireNow(scope, now)
    if (idle) return Promise.resolve(idle)
    if (this.#ending || scope.ended) {
      return Promise.reject(new PoolsEndedError(`Pool ${scope.key} has been ended`))
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        scope,
        resolve: (conn) => {
          this.#forgetSignal(waiter)
          resolve(conn)
        },
        reject: (err) => {
          this.#forgetSignal(waiter)
          reject(err)
        },
        since: now,
        deadlineBound: limits?.deadlineBound ?? false,
        timer: setTimeout(() => this.#timeOut(waiter), limits?.waitMs ?? this.#config.connectTimeoutMs),
      }
      const signal = limits?.signal
      if (signal) {
        waiter.signal = signal
        waiter.onAbort = () => this.#abandon(waiter)
        signal.addEventListener('abort', waiter.onAbort, { once: true })
      }
      this.#waiters.push(waiter)
      scope.waiting++
      this.#grow()
    })
  }

  /**
   * The checkout `acquire` makes without waiting, at `now`: an idle connection for `scope` (bound to
   * it if one is), or undefined if there is none to take (acquire then waits, or refuses an ended pool).
   */
  acquireNow(scope: ScopeUse, now: number): PooledConnection | undefined {
    this.lastUsedAt = now
    scope.touch(now)
    if (this.#ending || scope.ended || scope.active >= this.#config.maxPerScope) return undefined
    const idle = this.#takeIdle(scope, now)
    if (idle) this.#hand(idle, scope)
    return idle
  }

  // The newest idle connection bound to `scope` (the warm path: no allocation, and almost always
  // the last one looked at), else one to rebind: one whose backend served the scope's schema before
  // (its catalog cache holds it already), else the one that served the fewest schemas, the one idle
  // longest among equals, so that each backend sees a share of the tenants and reaches its
  // maxSchemasPerConnection late; one at the bound serves only the schemas it served. Any idle
  // connection that can serve the scope does rather than a wait. The sweep runs at most once an
  // interval: what it would have closed is closed now instead of handed out.
  #takeIdle(scope: ScopeUse, now: number): PooledConnection | undefined {
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const conn = this.#idle[i] as PooledConnection
      if (conn.boundTo !== scope) continue
      if (this.#stale(conn, now)) {
        this.#destroy(conn)
        continue
      }
      this.#unpark(conn)
      return conn
    }
    const schema = scope.scope.schema
    let best: PooledConnection | undefined
    for (let i = 0; i < this.#idle.length; ) {
      const conn = this.#idle[i] as PooledConnection
      if (this.#stale(conn, now)) {
        // Spliced out of #idle: the next one is now at i.
        this.#destroy(conn)
        continue
      }
      if (conn.schemasServed.has(schema)) {
        best = conn
        break
      }
      // At the bound, a connection takes no new schema: the caller gets a new connection instead
      // (within the budget, which closes the connection idle longest when it is spent).
      if (!this.#full(conn) && (best === undefined || conn.schemasServed.size < best.schemasServed.size)) {
        best = conn
      }
      i++
    }
    if (best) this.#unpark(best)
    return best
  }

  #unpark(conn: PooledConnection): void {
    this.#idle.splice(this.#idle.indexOf(conn), 1)
    conn.boundTo.idle--
  }

  #hand(conn: PooledConnection, scope: ScopeUse): void {
    conn.holder = scope
    // A schema it served already is not added again (no allocation on the warm path).
    conn.schemasServed.add(scope.scope.schema)
    scope.active++
    this.#config.events.reused()
  }

  #forgetSignal(waiter: Waiter): void {
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort)
  }

  #unqueue(waiter: Waiter): boolean {
    const i = this.#waiters.indexOf(waiter)
    if (i === -1) return false
    this.#waiters.splice(i, 1)
    waiter.scope.waiting--
    clearTimeout(waiter.timer)
    return true
  }

  // The caller's signal was aborted while it waited.
  #abandon(waiter: Waiter): void {
    if (!this.#unqueue(waiter)) return
    this.#withdrawSurplusClaims()
    waiter.reject(
      new DeadlineExceededError(`The wait for a connection of pool ${waiter.scope.key} was aborted`),
    )
  }

  /**
   * Opens one connection for no caller, bound to `scope`, and parks it idle; a caller who comes
   * meanwhile waits for it rather than open a second one. Only into an empty login, on a budget slot
   * free now (no claim is queued for it). Never rejects: a failure is the outcome, counted and
   * logged by the caller, and answers no waiting caller, who then opens its own connection.
   */
  prewarm(scope: ScopeUse): Promise<PrewarmOutcome> {
    if (this.#ending || scope.ended) return Promise.resolve({ outcome: 'skipped', reason: 'ended' })
    if (this.total > 0 || this.#claims > 0 || this.#waiters.length > 0) {
      return Promise.resolve({ outcome: 'skipped', reason: 'the login has a connection already' })
    }
    return new Promise((done) => {
      const prewarm: Prewarm = { scope, done }
      this.#prewarm = prewarm
      this.#claims++
      // granted() runs at once when a slot is free, and takes the prewarm.
      this.#config.budget.claim(this)
      if (this.#prewarm !== prewarm) return
      this.#prewarm = undefined
      if (this.#config.budget.withdraw(this)) this.#claims--
      done({ outcome: 'skipped', reason: 'no budget slot free' })
    })
  }

  /**
   * Returns a checked-out connection. With an error, or when the session is dirty (lost socket,
   * open or failed transaction), past its lifetime, having served maxSchemasPerConnection schemas
   * (but for the one kept), or its scope ended, it is destroyed instead.
   * `reset`: the holder may have left state in the session; it is reset before its next use.
   */
  release(conn: PooledConnection, err?: unknown, reset = false): void {
    clearTimeout(conn.leakTimer)
    conn.leakTimer = undefined
    const holder = conn.holder
    conn.holder = undefined
    const now = this.#config.clock.now()
    this.lastUsedAt = now
    if (holder) {
      holder.active--
      holder.touch(now)
    }
    if (reset) conn.needsReset = true
    // A kill its holder's statement or liveness check met (the FATAL was that one's answer, so the
    // client emitted no 'error'): counted as one seen while idle is.
    const killedBy = conn.killedBy ?? (err !== undefined && isServerKill(err) ? (err as Error) : undefined)
    if (killedBy) this.#lose(conn, killedBy)
    if (err !== undefined || conn.dirty) this.#destroy(conn)
    else this.#offer(conn, now)
    holder?.checkDrained()
    this.#grow()
  }

  /** Closes idle connections past the idle timeout or lifetime. Returns how many were closed. */
  sweep(now: number): number {
    let closed = 0
    for (const conn of [...this.#idle]) {
      if (this.#stale(conn, now)) {
        this.#destroy(conn)
        closed++
      }
    }
    return closed
  }

  /** Closes every idle connection (of one scope, if given). Returns how many. */
  closeIdle(scope?: ScopeUse): number {
    const idle = this.#idle.filter((c) => scope === undefined || c.boundTo === scope)
    for (const conn of idle) this.#destroy(conn)
    return idle.length
  }

  /** Closes the connection that has been idle longest, to give its budget slot to another login. */
  closeOldestIdle(): boolean {
    const oldest = this.#idle[0]
    if (!oldest) return false
    this.#destroy(oldest)
    return true
  }

  /** When the oldest idle connection was freed, if any: the registry closes the least recently used. */
  get oldestIdleSince(): number | undefined {
    return this.#idle[0]?.idleSince
  }

  /**
   * Ends one scope here: its waiters are refused, its idle connections closed (with `closeIdle`;
   * otherwise they stay for other scopes to rebind), and those its calls hold are closed when freed.
   * Resolves once they are.
   */
  endScope(scope: ScopeUse, closeIdle = true): Promise<void> {
    scope.ended = true
    if (scope.waiting > 0) {
      for (const waiter of this.#waiters.filter((w) => w.scope === scope)) {
        this.#unqueue(waiter)
        waiter.reject(new PoolsEndedError(`Pool ${scope.key} was ended while waiting for a connection`))
      }
    }
    this.#withdrawSurplusClaims()
    if (closeIdle) this.closeIdle(scope)
    return scope.drained()
  }

  /**
   * Ends the login's pool: idle connections close now, checked-out ones when released, and callers
   * still waiting for a connection are rejected. Resolves once every socket is closed. Safe to call twice.
   */
  end(): Promise<void> {
    if (!this.#ending) {
      this.#ending = true
      for (const waiter of [...this.#waiters]) {
        this.#unqueue(waiter)
        waiter.reject(
          new PoolsEndedError(`Pool ${waiter.scope.key} was ended while waiting for a connection`),
        )
      }
      while (this.#claims > 0 && this.#config.budget.withdraw(this)) this.#claims--
      for (const conn of [...this.#idle]) this.#destroy(conn)
    }
    return new Promise((resolve) => {
      this.#onDrained.push(resolve)
      this.#checkDrained()
    })
  }

  /** Budget callback: a slot is ours. Open a connection if a caller still needs one. */
  granted(): void {
    this.#claims--
    const prewarm = this.#prewarm
    this.#prewarm = undefined
    const scope = this.#ending ? undefined : this.#firstEligible()?.scope
    if (scope && this.#eligibleWaiters() > this.#opening) {
      this.#open(scope)
      prewarm?.done({ outcome: 'skipped', reason: 'a caller took the slot' })
      return
    }
    if (prewarm && !this.#ending && !prewarm.scope.ended) {
      this.#open(prewarm.scope, prewarm.done)
      return
    }
    prewarm?.done({ outcome: 'skipped', reason: 'ended' })
    this.#config.budget.release()
  }

  #checkDrained(): void {
    if (this.#ending && this.#all.size === 0 && this.#opening === 0 && this.#closing === 0) {
      for (const resolve of this.#onDrained.splice(0)) resolve()
    }
  }

  // A waiter may be served only while its scope holds fewer than maxPerScope connections.
  #eligible(waiter: Waiter, taken: Map<ScopeUse, number>): boolean {
    const held = waiter.scope.active + (taken.get(waiter.scope) ?? 0)
    if (held >= this.#config.maxPerScope) return false
    taken.set(waiter.scope, (taken.get(waiter.scope) ?? 0) + 1)
    return true
  }

  // Closed at its release for the bound, and counted so.
  #retire(conn: PooledConnection): void {
    this.#config.events.retiredBySchemas(conn.boundTo.key)
    this.#destroy(conn)
  }

  // Has served maxSchemasPerConnection distinct schemas (with a bound set).
  #full(conn: PooledConnection): boolean {
    const max = this.#config.maxSchemasPerConnection
    return max > 0 && conn.schemasServed.size >= max
  }

  // Both run on every release: with nobody waiting (the warm path) they allocate nothing.
  // The first waiter that may be served; with `servedBy`, the first whose schema that connection
  // served before (a connection at the bound takes no other).
  #firstEligible(servedBy?: PooledConnection): Waiter | undefined {
    if (this.#waiters.length === 0) return undefined
    const taken = new Map<ScopeUse, number>()
    return this.#waiters.find(
      (w) =>
        this.#eligible(w, taken) &&
        (servedBy === undefined || servedBy.schemasServed.has(w.scope.scope.schema)),
    )
  }

  #eligibleWaiters(): number {
    if (this.#waiters.length === 0) return 0
    const taken = new Map<ScopeUse, number>()
    let n = 0
    for (const w of this.#waiters) if (this.#eligible(w, taken)) n++
    return n
  }

  // Makes sure enough connections are on their way for the waiters that may be served. A waiter
  // whose scope is at its limit waits for one of its own scope's connections instead.
  #grow(): void {
    if (this.#ending) return
    const needed = this.#eligibleWaiters() - this.#opening - this.#claims
    for (let i = 0; i < needed; i++) {
      this.#claims++
      this.#config.budget.claim(this)
    }
  }

  // Opens one connection on a granted slot, all of it (credentials, connect, verify) within the
  // connect timeout. The slot is returned only when the attempt has settled and any late client is
  // closed, so a slow attempt that outlives its caller still counts against the budget.
  // `prewarmed`: opened for no caller (prewarm()), told how it went.
  #open(scope: ScopeUse, prewarmed?: (outcome: PrewarmOutcome) => void): void {
    this.#opening++
    const abandoned = { value: false }
    const attempt = this.#connect(scope, abandoned)
    let timer: NodeJS.Timeout | undefined
    let timedOut = false
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true
        reject(
          new ConnectError(
            `Opening a connection for pool ${scope.key} took longer than ${this.#config.connectTimeoutMs} ms`,
          ),
        )
      }, this.#config.connectTimeoutMs)
    })
    Promise.race([attempt, deadline]).then(
      (conn) => {
        clearTimeout(timer)
        this.#opening--
        this.#all.add(conn)
        this.#config.events.opened()
        if (prewarmed) conn.prewarmed = true
        this.#offer(conn)
        this.#grow()
        if (prewarmed) prewarmed(this.#idle.includes(conn) ? OPENED : OPENED_HANDED_OVER)
      },
      (err: unknown) => {
        clearTimeout(timer)
        this.#opening--
        abandoned.value = true
        // A late client is closed when it arrives. Its slot waits for that, but not forever: a
        // provider that never answers must not hold the budget (or end()) hostage; an abandoned
        // attempt opens no socket after this point.
        const late = attempt.then((conn) =>
          closeClient(conn.client, closeTimeout(this.#config.connectTimeoutMs)),
        )
        const settled = Promise.race([late.catch(() => {}), delay(this.#config.connectTimeoutMs)])
        this.#closing++
        this.#config.budget.releaseWhen(settled)
        void settled.then(this.#closed)
        const failure =
          err instanceof TenantPoolsError
            ? err
            : new ConnectError(`Could not open a connection for pool ${scope.key}`, { cause: err })
        if (prewarmed) {
          // Nobody waited for it: a caller who came meanwhile opens its own now, as without a prewarm.
          prewarmed({ outcome: 'failed', error: failure })
          this.#grow()
          return
        }
        this.#config.events.connectFailed(failure)
        // A failure the server or provider reported answers one caller (of the scope it was opened
        // for, if one still waits); the others keep waiting for their own attempt. A missed deadline
        // answers no one: each caller has its own timer, and a caller who came late must not inherit
        // an early attempt's timeout.
        const waiter = timedOut
          ? undefined
          : (this.#waiters.find((w) => w.scope === scope) ?? this.#firstEligible())
        if (waiter) {
          this.#unqueue(waiter)
          waiter.reject(failure)
        }
        this.#grow()
      },
    )
  }

  readonly #closed = (): void => {
    this.#closing--
    this.#checkDrained()
  }

  // Connects with the provider's credentials. If the server refuses them (28P01: rotated under us),
  // the provider is asked once more with its cache bypassed, and the connection is tried once more.
  // A failed client is closed before the attempt settles.
  async #connect(scope: ScopeUse, abandoned: { value: boolean }): Promise<PooledConnection> {
    let refused: Credentials | undefined
    let fullRetries = 0
    let killedRetries = 0
    for (;;) {
      let client: Client | undefined
      let credentials: Credentials | undefined
      try {
        ;({ client, credentials } = await this.#config.createClient(scope, refused))
        if (abandoned.value) throw new ConnectError(`Connection attempt for pool ${scope.key} was abandoned`)
        const conn = new PooledConnection(client, this.#config.clock.now(), scope)
        // Attached before connect: an 'error' event with no listener kills the process.
        client.on('error', (err) => this.#lose(conn, err))
        await client.connect()
        await this.#config.verify?.(client, scope)
        return conn
      } catch (err) {
        if (client) await closeClient(client, closeTimeout(this.#config.connectTimeoutMs))
        if (!abandoned.value && SERVER_FULL.has(sqlState(err) ?? '')) {
          // The server is out of connections (53300) or not accepting yet (57P03). Give back what
          // this environment holds idle elsewhere, then retry with full-jitter exponential backoff;
          // the attempt's deadline (connectTimeoutMs) bounds the whole loop.
          this.#config.events.serverFull(scope.key)
          const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** fullRetries++)
          await delay(Math.random() * cap)
          continue
        }
        if (!abandoned.value && isServerKill(err) && killedRetries++ < KILLED_AT_LOGIN_RETRIES) {
          this.#config.events.lost(scope.key, err as Error)
          continue
        }
        if (refused || !credentials || abandoned.value || !LOGIN_REFUSED.has(sqlState(err) ?? '')) throw err
        // Non-enumerable password: a provider that logs its request still shows no secret.
        refused = hiddenCredentials(credentials.user, credentials.password)
        this.#config.events.credentialsRefused(scope.key)
      }
    }
  }

  // A usable connection is free: give it to a waiter, free its slot for a starving login, or park it.
  #offer(conn: PooledConnection, now = this.#config.clock.now()): void {
    if (
      this.#ending ||
      conn.lost ||
      conn.boundTo.ended ||
      now - conn.createdAt >= this.#config.maxLifetimeMs
    ) {
      this.#destroy(conn)
      return
    }
    // Checked here, when it comes back, never while a call holds it. A new connection has served
    // nothing yet; one handed over (here, to a waiter) counts its schema from then on.
    const full = this.#full(conn)
    if (full && (!this.#config.keepFullConnection || (this.#keeper !== conn && this.#keeper !== undefined))) {
      this.#retire(conn)
      return
    }
    conn.idleSince = now
    conn.freedInInvocation = this.#config.invocation()
    const waiter = this.#firstEligible(full ? conn : undefined)
    const starving = this.#config.budget.oldestClaimSince(this)
    // Fair across logins: when another login has waited for a slot longer than our first caller, and
    // for a while (so two busy logins don't trade a connection on every release), the slot goes there
    // and our caller queues for a new one. One busy login cannot starve the rest.
    if (
      starving !== undefined &&
      (waiter === undefined || (starving < waiter.since && now - starving >= this.#fairnessWaitMs))
    ) {
      this.#destroy(conn)
      return
    }
    if (waiter) {
      this.#unqueue(waiter)
      // Handed first: the scope's new count decides which of the remaining waiters still need a claim.
      this.#hand(conn, waiter.scope)
      this.#withdrawSurplusClaims()
      waiter.resolve(conn)
      return
    }
    // With keepFullConnection, the first connection at the bound is kept, for the schemas its
    // backend's catalog cache holds: under a skewed load the busiest tenants are among the first it
    // met, and the bound would otherwise send each of them to a cold backend every
    // maxSchemasPerConnection new schemas (keeping every full one within the budget measured
    // slower: requests spread over more backends). Unless callers wait for a budget slot to open a
    // connection for schemas it cannot take: its slot is theirs. When the budget runs short later,
    // the connection idle longest is closed, the kept one too.
    if (full) {
      if (this.#claims > 0) {
        this.#retire(conn)
        return
      }
      this.#keeper = conn
    }
    this.#idle.push(conn)
    conn.boundTo.idle++
  }

  #timeOut(waiter: Waiter): void {
    if (!this.#unqueue(waiter)) return
    this.#withdrawSurplusClaims()
    this.#config.events.acquireTimedOut()
    const { scope } = waiter
    if (waiter.deadlineBound) {
      waiter.reject(
        new DeadlineExceededError(`No connection for pool ${scope.key} before the call's deadline`),
      )
      return
    }
    const { budget, connectTimeoutMs: ms, maxPerScope: max } = this.#config
    // Waiting on a connection being opened (not on the budget or the scope's max): the database or
    // the credentials provider is slow, which is not exhaustion.
    if (this.#opening > 0 && this.#claims === 0 && scope.active < max) {
      waiter.reject(new ConnectError(`Opening a connection for pool ${scope.key} took longer than ${ms} ms`))
      return
    }
    waiter.reject(
      new PoolExhaustedError(
        `No connection for pool ${scope.key} within ${ms} ms: its connections in use (${scope.active} of max ${max}) ` +
          `and the environment budget (${budget.used} of ${budget.limit}) were taken. ` +
          'Retry later, or raise maxPerScope / budget.',
      ),
    )
  }

  // Queued budget claims beyond what the remaining waiters need are handed back.
  #withdrawSurplusClaims(): void {
    while (this.#claims > 0 && this.#claims + this.#opening > this.#eligibleWaiters()) {
      if (!this.#config.budget.withdraw(this)) break
      this.#claims--
    }
  }

  #stale(conn: PooledConnection, now: number): boolean {
    return (
      now - conn.idleSince >= this.#config.idleTimeoutMs || now - conn.createdAt >= this.#config.maxLifetimeMs
    )
  }

  #lose(conn: PooledConnection, err: Error): void {
    if (conn.lost) return
    conn.lost = true
    this.#config.events.lost(conn.boundTo.key, err)
    if (this.#idle.includes(conn)) this.#destroy(conn)
    // A checked-out connection is destroyed when its caller releases it.
  }

  #destroy(conn: PooledConnection): void {
    if (!this.#all.delete(conn)) return
    if (this.#keeper === conn) this.#keeper = undefined
    const i = this.#idle.indexOf(conn)
    if (i !== -1) {
      this.#idle.splice(i, 1)
      conn.boundTo.idle--
    }
    this.#config.events.closed()
    this.#closing++
    // The slot comes back only once the socket is closed, so the server never sees more than the budget.
    const closed = closeClient(conn.client, closeTimeout(this.#config.connectTimeoutMs))
    this.#config.budget.releaseWhen(closed)
    conn.boundTo.closing(closed)
    closed.then(this.#closed)
  }
}
