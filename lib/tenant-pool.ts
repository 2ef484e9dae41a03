// One small pool for one key (`tenantId`, `tenantId:app` or the master schema).
// Not pg.Pool: every connection here must first win a slot of the environment-wide budget, and
// the registry must be able to close another pool's idle connection to free one. pg.Pool offers
// neither without reaching into its private fields.
import type { Client } from 'pg'
import type { BudgetClaimant, ConnectionBudget } from './budget'
import { PooledConnection } from './connection'
import { ConnectError, PoolExhaustedError, PoolsEndedError, TenantPoolsError } from './errors'
import { INVALID_PASSWORD, sqlState } from './sqlstate'
import type { Clock, PoolEvents } from './types'

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
  /** Returns a configured, not yet connected client; `forceRefresh` bypasses cached credentials. */
  createClient: (forceRefresh: boolean) => Promise<Client>
  /** Runs once on each new connection before first use; a throw discards the connection. */
  verify?: (client: Client) => Promise<void>
}

interface Waiter {
  resolve: (conn: PooledConnection) => void
  reject: (err: Error) => void
  timer: NodeJS.Timeout
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

  get ending(): boolean {
    return this.#ending
  }

  /** Checks out a connection: an idle one at once, else waits up to the connect timeout. */
  acquire(): Promise<PooledConnection> {
    this.lastUsedAt = this.#config.clock.now()
    if (this.#ending) return Promise.reject(new PoolsEndedError(`Pool ${this.key} has been ended`))
    const idle = this.#idle.pop()
    if (idle) {
      this.#config.events.reused()
      return Promise.resolve(idle)
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => this.#timeOut(waiter), this.#config.connectTimeoutMs),
      }
      this.#waiters.push(waiter)
      this.#grow()
    })
  }

  /**
   * Returns a checked-out connection. With an error, or when the session is dirty (lost socket,
   * open or failed transaction) or past its lifetime, the connection is destroyed instead.
   */
  release(conn: PooledConnection, err?: unknown): void {
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
      if (now - conn.idleSince >= this.#config.idleTimeoutMs || this.#expired(conn, now)) {
        this.#destroy(conn)
        closed++
      }
    }
    return closed
  }

  /** Closes the connection that has been idle longest, to give its budget slot to another pool. */
  closeOldestIdle(): boolean {
    const oldest = this.#idle[0]
    if (!oldest) return false
    this.#destroy(oldest)
    return true
  }

  /**
   * Ends the pool: idle connections close now, checked-out ones when released, waiters are rejected.
   * Resolves once every connection is closed. Safe to call more than once.
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

  #checkDrained(): void {
    if (this.#ending && this.#all.size === 0 && this.#opening === 0 && this.#closing === 0) {
      for (const resolve of this.#onDrained.splice(0)) resolve()
    }
  }

  /** Budget callback: a slot is ours. Open a connection if a caller still needs one. */
  granted(): void {
    this.#claims--
    if (this.#ending || this.#waiters.length <= this.#opening) {
      this.#config.budget.release()
      return
    }
    void this.#open()
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

  async #open(): Promise<void> {
    this.#opening++
    try {
      const conn = await this.#connect()
      this.#opening--
      this.#all.add(conn)
      this.#config.events.opened()
      this.#offer(conn)
    } catch (err) {
      this.#opening--
      this.#config.budget.release()
      this.#checkDrained()
      const failure =
        err instanceof TenantPoolsError
          ? err
          : new ConnectError(`Could not open a connection for pool ${this.key}`, { cause: err })
      this.#config.events.connectFailed(failure)
      // One failed attempt answers one caller; the others keep waiting for their own attempt.
      const waiter = this.#waiters.shift()
      if (waiter) {
        clearTimeout(waiter.timer)
        waiter.reject(failure)
      }
      this.#grow()
    }
  }

  // Connects with the provider's credentials. If the server refuses them (28P01: rotated under us),
  // the provider is asked once more with its cache bypassed, and the connection is tried once more.
  async #connect(): Promise<PooledConnection> {
    for (let attempt = 0; ; attempt++) {
      const forceRefresh = attempt > 0
      let client: Client | undefined
      try {
        client = await this.#config.createClient(forceRefresh)
        const conn = new PooledConnection(client, this.#config.clock.now())
        // Attached before connect: an 'error' event with no listener kills the process.
        client.on('error', (err) => this.#lose(conn, err))
        await client.connect()
        await this.#config.verify?.(client)
        return conn
      } catch (err) {
        client?.end().catch(() => {})
        if (forceRefresh || sqlState(err) !== INVALID_PASSWORD) throw err
        this.#config.events.credentialsRefused(this.key)
      }
    }
  }

  // A usable connection is free: give it to a waiter, free its slot for a starving pool, or park it.
  #offer(conn: PooledConnection): void {
    if (this.#ending || conn.lost || this.#expired(conn, this.#config.clock.now())) {
      this.#destroy(conn)
      this.#grow()
      return
    }
    const waiter = this.#waiters.shift()
    if (waiter) {
      clearTimeout(waiter.timer)
      this.#withdrawSurplusClaims()
      this.#config.events.reused()
      waiter.resolve(conn)
      return
    }
    if (this.#config.budget.waiting > 0) {
      this.#destroy(conn)
      return
    }
    conn.idleSince = this.#config.clock.now()
    this.#idle.push(conn)
  }

  #timeOut(waiter: Waiter): void {
    const i = this.#waiters.indexOf(waiter)
    if (i === -1) return
    this.#waiters.splice(i, 1)
    this.#withdrawSurplusClaims()
    this.#config.events.acquireTimedOut()
    const ms = this.#config.connectTimeoutMs
    waiter.reject(
      this.#opening > 0 && this.total < this.#config.max
        ? new ConnectError(
            `No connection for pool ${this.key} within ${ms} ms: the database is slow to accept`,
          )
        : new PoolExhaustedError(
            `No connection for pool ${this.key} within ${ms} ms: all ${this.total} of its connections ` +
              `(max ${this.#config.max}) and ${this.#config.budget.used} of the environment budget ` +
              `(${this.#config.budget.limit}) are in use. Retry later, or raise maxPerPool / budget.`,
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

  #expired(conn: PooledConnection, now: number): boolean {
    return now - conn.createdAt >= this.#config.maxLifetimeMs
  }

  #lose(conn: PooledConnection, err: Error): void {
    if (conn.lost) return
    conn.lost = true
    this.#config.events.lost(this.key, err)
    const i = this.#idle.indexOf(conn)
    if (i !== -1) this.#destroy(conn)
    // A checked-out connection is destroyed when its caller releases it.
  }

  #destroy(conn: PooledConnection): void {
    if (!this.#all.delete(conn)) return
    const i = this.#idle.indexOf(conn)
    if (i !== -1) this.#idle.splice(i, 1)
    this.#config.events.closed()
    this.#closing++
    // The slot is returned only once the socket is closed, so the server never sees more than the budget.
    conn.client
      .end()
      .catch(() => {})
      .finally(() => {
        this.#closing--
        this.#config.budget.release()
        this.#checkDrained()
      })
  }
}
