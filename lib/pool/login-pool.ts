// One small pool for one key (`tenantId`, `tenantId:app` or the master schema).
// Not pg.Pool: every connection here must first win a slot of the environment-wide budget, and
// the registry must be able to close another pool's idle connection to free one. pg.Pool offers
// neither without reaching into its private fields.
import type { Client } from 'pg'
import { hiddenCredentials } from '../credentials/hidden'
import {
  ConnectError,
  DeadlineExceededError,
  PoolExhaustedError,
  PoolsEndedError,
  TenantPoolsError,
} from '../errors'
import { INVALID_PASSWORD, sqlState, TOO_MANY_CONNECTIONS } from '../sqlstate'
import type { Clock, Credentials, PoolEvents } from '../types'
import type { BudgetClaimant, ConnectionBudget } from './budget'
import { closeClient, PooledConnection } from './connection'

export interface TenantPoolConfig {
  key: string
  tenantId: string | null
  app: string | null
  max: number
  idleTimeoutMs: number
  maxLifetimeMs: number
  connectTimeoutMs: number
  budget: ConnectionBudget
  clock: Clock
  events: PoolEvents
  /** Returns a configured, not yet connected client; given `refused` credentials, fresh ones are fetched. */
  createClient: (refused?: Credentials) => Promise<{ client: Client; credentials: Credentials }>
  /** The registry's invocation count (see TenantPools.invocationStarted). */
  invocation: () => number
  /** Runs once on each new connection before first use; a throw discards the connection. */
  verify?: (client: Client) => Promise<void>
}

// A graceful close takes a round trip; a peer that doesn't answer gets a quarter of the connect
// timeout, leaving the rest of a waiting caller's timeout for the connection that replaces it.
const closeTimeout = (connectTimeoutMs: number) => Math.max(100, Math.floor(connectTimeoutMs / 4))

// Backoff when the server is full: 25 ms doubling per retry, capped at 400 ms, fully jittered.
const BACKOFF_BASE_MS = 25
const BACKOFF_CAP_MS = 400
const SERVER_FULL = new Set([TOO_MANY_CONNECTIONS, '57P03'])

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref())

interface Waiter {
  resolve: (conn: PooledConnection) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
  since: number
  /** The caller's deadline, not the connect timeout, bounds this wait. */
  deadlineBound: boolean
  signal?: AbortSignal
  onAbort?: () => void
}

/** How long one checkout may wait; by default the connect timeout. */
export interface AcquireLimits {
  waitMs: number
  /** The wait was cut short by the caller's deadline: its timeout is a DeadlineExceededError. */
  deadlineBound: boolean
  signal?: AbortSignal
}

export class TenantPool implements BudgetClaimant {
  readonly key: string
  readonly tenantId: string | null
  readonly app: string | null
  lastUsedAt: number
  readonly #config: TenantPoolConfig
  // Every connected connection, idle or checked out.
  readonly #all = new Set<PooledConnection>()
  // A stack: the most recently released connection is reused first, so surplus ones age out.
  readonly #idle: PooledConnection[] = []
  readonly #waiters: Waiter[] = []
  #opening = 0
  // Sockets still closing (and late connection attempts): end() waits for them.
  #closing = 0
  #claims = 0
  #ending = false
  readonly #onDrained: Array<() => void> = []

  constructor(config: TenantPoolConfig) {
    this.#config = config
    this.key = config.key
    this.tenantId = config.tenantId
    this.app = config.app
    this.lastUsedAt = config.clock.now()
  }

  // A quarter of the connect timeout: a starving pool is served well before its callers time out.
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

  /** Checks out a connection: an idle one at once, else waits up to the connect timeout (or `limits`). */
  acquire(limits?: AcquireLimits): Promise<PooledConnection> {
    const now = this.#config.clock.now()
    this.lastUsedAt = now
    if (this.#ending) return Promise.reject(new PoolsEndedError(`Pool ${this.key} has been ended`))
    for (let idle = this.#idle.pop(); idle; idle = this.#idle.pop()) {
      // The sweep runs at most once an interval; don't hand out what it would have closed.
      if (this.#stale(idle, now)) {
        this.#destroy(idle)
        continue
      }
      this.#config.events.reused()
      return Promise.resolve(idle)
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
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
      this.#grow()
    })
  }

  #forgetSignal(waiter: Waiter): void {
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort)
  }

  // The caller's signal was aborted while it waited.
  #abandon(waiter: Waiter): void {
    const i = this.#waiters.indexOf(waiter)
    if (i === -1) return
    this.#waiters.splice(i, 1)
    clearTimeout(waiter.timer)
    this.#withdrawSurplusClaims()
    waiter.reject(new DeadlineExceededError(`The wait for a connection of pool ${this.key} was aborted`))
  }

  /**
   * Returns a checked-out connection. With an error, or when the session is dirty (lost socket,
   * open or failed transaction) or past its lifetime, the connection is destroyed instead.
   */
  release(conn: PooledConnection, err?: unknown): void {
    clearTimeout(conn.leakTimer)
    conn.leakTimer = undefined
    this.lastUsedAt = this.#config.clock.now()
    if (err !== undefined || conn.dirty) {
      this.#destroy(conn)
      this.#grow()
      return
    }
    this.#offer(conn)
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

  /** Closes every idle connection. Returns how many. */
  closeIdle(): number {
    const idle = [...this.#idle]
    for (const conn of idle) this.#destroy(conn)
    return idle.length
  }

  /** Closes the connection that has been idle longest, to give its budget slot to another pool. */
  closeOldestIdle(): boolean {
    const oldest = this.#idle[0]
    if (!oldest) return false
    this.#destroy(oldest)
    return true
  }

  /**
   * Ends the pool: idle connections close now, checked-out ones when released, and callers still
   * waiting for a connection are rejected. Resolves once every socket is closed. Safe to call twice.
   */
  end(): Promise<void> {
    if (!this.#ending) {
      this.#ending = true
      for (const waiter of this.#waiters.splice(0)) {
        clearTimeout(waiter.timer)
        waiter.reject(new PoolsEndedError(`Pool ${this.key} was ended while waiting for a connection`))
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
    if (this.#ending || this.#waiters.length <= this.#opening) {
      this.#config.budget.release()
      return
    }
    this.#open()
  }

  #checkDrained(): void {
    if (this.#ending && this.#all.size === 0 && this.#opening === 0 && this.#closing === 0) {
      for (const resolve of this.#onDrained.splice(0)) resolve()
    }
  }

  // Makes sure enough connections are on their way for the callers waiting, within `max`.
  #grow(): void {
    if (this.#ending) return
    const needed = this.#waiters.length - this.#opening - this.#claims
    const room = this.#config.max - this.total - this.#claims
    for (let i = 0; i < Math.min(needed, room); i++) {
      this.#claims++
      this.#config.budget.claim(this)
    }
  }

  // Opens one connection on a granted slot, all of it (credentials, connect, verify) within the
  // connect timeout. The slot is returned only when the attempt has settled and any late client is
  // closed, so a slow attempt that outlives its caller still counts against the budget.
  #open(): void {
    this.#opening++
    const abandoned = { value: false }
    const attempt = this.#connect(abandoned)
    let timer: NodeJS.Timeout | undefined
    let timedOut = false
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true
        reject(
          new ConnectError(
            `Opening a connection for pool ${this.key} took longer than ${this.#config.connectTimeoutMs} ms`,
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
        this.#offer(conn)
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
            : new ConnectError(`Could not open a connection for pool ${this.key}`, { cause: err })
        this.#config.events.connectFailed(failure)
        // A failure the server or provider reported answers one caller; the others keep waiting for
        // their own attempt. A missed deadline answers no one: each caller has its own timer, and a
        // caller who came late must not inherit an early attempt's timeout.
        const waiter = timedOut ? undefined : this.#waiters.shift()
        if (waiter) {
          clearTimeout(waiter.timer)
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
  async #connect(abandoned: { value: boolean }): Promise<PooledConnection> {
    let refused: Credentials | undefined
    let fullRetries = 0
    for (;;) {
      let client: Client | undefined
      let credentials: Credentials | undefined
      try {
        ;({ client, credentials } = await this.#config.createClient(refused))
        if (abandoned.value) throw new ConnectError(`Connection attempt for pool ${this.key} was abandoned`)
        const conn = new PooledConnection(client, this.#config.clock.now())
        // Attached before connect: an 'error' event with no listener kills the process.
        client.on('error', (err) => this.#lose(conn, err))
        await client.connect()
        await this.#config.verify?.(client)
        return conn
      } catch (err) {
        if (client) await closeClient(client, closeTimeout(this.#config.connectTimeoutMs))
        if (!abandoned.value && SERVER_FULL.has(sqlState(err) ?? '')) {
          // The server is out of connections (53300) or not accepting yet (57P03). Give back what
          // this environment holds idle elsewhere, then retry with full-jitter exponential backoff;
          // the attempt's deadline (connectTimeoutMs) bounds the whole loop.
          this.#config.events.serverFull(this.key)
          const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** fullRetries++)
          await delay(Math.random() * cap)
          continue
        }
        if (refused || !credentials || abandoned.value || sqlState(err) !== INVALID_PASSWORD) throw err
        // Non-enumerable password: a provider that logs its request still shows no secret.
        refused = hiddenCredentials(credentials.user, credentials.password)
        this.#config.events.credentialsRefused(this.key)
      }
    }
  }

  // A usable connection is free: give it to a waiter, free its slot for a starving pool, or park it.
  #offer(conn: PooledConnection): void {
    const now = this.#config.clock.now()
    if (this.#ending || conn.lost || now - conn.createdAt >= this.#config.maxLifetimeMs) {
      this.#destroy(conn)
      this.#grow()
      return
    }
    conn.idleSince = now
    conn.freedInInvocation = this.#config.invocation()
    const waiter = this.#waiters[0]
    const starving = this.#config.budget.oldestClaimSince(this)
    // Fair across tenants: when another pool has waited for a slot longer than our first caller, and
    // for a while (so two busy tenants don't trade a connection on every release), the slot goes there
    // and our caller queues for a new one. One busy tenant cannot starve the rest.
    if (
      starving !== undefined &&
      (waiter === undefined || (starving < waiter.since && now - starving >= this.#fairnessWaitMs))
    ) {
      this.#destroy(conn)
      this.#grow()
      return
    }
    if (waiter) {
      this.#waiters.shift()
      clearTimeout(waiter.timer)
      this.#withdrawSurplusClaims()
      this.#config.events.reused()
      waiter.resolve(conn)
      return
    }
    this.#idle.push(conn)
  }

  #timeOut(waiter: Waiter): void {
    const i = this.#waiters.indexOf(waiter)
    if (i === -1) return
    this.#waiters.splice(i, 1)
    this.#withdrawSurplusClaims()
    this.#config.events.acquireTimedOut()
    if (waiter.deadlineBound) {
      waiter.reject(
        new DeadlineExceededError(`No connection for pool ${this.key} before the call's deadline`),
      )
      return
    }
    const { budget, connectTimeoutMs: ms, max } = this.#config
    // Waiting on a connection being opened (not on the budget or the pool's max): the database or
    // the credentials provider is slow, which is not exhaustion.
    if (this.#opening > 0 && this.#claims === 0 && this.#all.size < max) {
      waiter.reject(new ConnectError(`Opening a connection for pool ${this.key} took longer than ${ms} ms`))
      return
    }
    waiter.reject(
      new PoolExhaustedError(
        `No connection for pool ${this.key} within ${ms} ms: its connections (${this.total} of max ${max}) ` +
          `and the environment budget (${budget.used} of ${budget.limit}) were in use. ` +
          'Retry later, or raise maxPerPool / budget.',
      ),
    )
  }

  // Queued budget claims beyond what the remaining waiters need are handed back.
  #withdrawSurplusClaims(): void {
    while (this.#claims > 0 && this.#claims + this.#opening > this.#waiters.length) {
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
    this.#config.events.lost(this.key, err)
    if (this.#idle.includes(conn)) this.#destroy(conn)
    // A checked-out connection is destroyed when its caller releases it.
  }

  #destroy(conn: PooledConnection): void {
    if (!this.#all.delete(conn)) return
    const i = this.#idle.indexOf(conn)
    if (i !== -1) this.#idle.splice(i, 1)
    this.#config.events.closed()
    this.#closing++
    // The slot comes back only once the socket is closed, so the server never sees more than the budget.
    const closed = closeClient(conn.client, closeTimeout(this.#config.connectTimeoutMs))
    this.#config.budget.releaseWhen(closed)
    closed.then(this.#closed)
  }
}
