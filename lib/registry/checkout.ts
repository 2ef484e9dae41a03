// Checkout: hands a call a live connection of its scope whose session is bound to the scope and
// clean (readiness decides what that takes). One found dead is discarded and another taken, before
// any statement of the caller has run. It waits for the scope's login, for a connection (within the
// connect timeout and the call's deadline) and for its check; counts the checkout; and watches the
// connection for a leak if asked. The warm path (an idle connection bound to the scope, used
// moments ago) gets its connection without a promise.
import { DeadlineExceededError, PoolExhaustedError, PoolsEndedError } from '../errors'
import type { PooledConnection } from '../pool/connection'
import type { LoginPool } from '../pool/login-pool'
import { type Readiness, type Ready, type Ride, STALE } from '../pool/readiness'
import type { ScopeUse } from '../pool/scope-use'
import type { CallLimits, PrewarmOutcome, Scope } from '../types'
import type { RegistryContext } from './context'
import { heldByThisCall } from './held'
import type { Logins } from './logins'
import type { Readers } from './readers'
import type { ScopeTable } from './scope-table'

/** A checked-out connection, its login, and what remains of the call's deadline. */
export interface CheckedOut {
  login: LoginPool
  use: ScopeUse
  conn: PooledConnection
  leftMs: number
  /** What the statement must carry ahead of it: a full reset and rebind, or its search_path. */
  ride: Ride | undefined
}

export class Checkout {
  readonly #ctx: RegistryContext
  readonly #options: RegistryContext['options']
  readonly #counters: RegistryContext['counters']
  readonly #table: ScopeTable
  readonly #logins: Logins
  readonly #readiness: Readiness
  readonly #readers: Readers

  constructor(
    ctx: RegistryContext,
    table: ScopeTable,
    logins: Logins,
    readiness: Readiness,
    readers: Readers,
  ) {
    this.#ctx = ctx
    this.#options = ctx.options
    this.#counters = ctx.counters
    this.#table = table
    this.#logins = logins
    this.#readiness = readiness
    this.#readers = readers
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
  take(
    scope: Scope,
    limits: CallLimits,
    text?: string,
    values?: unknown[],
  ): CheckedOut | Promise<CheckedOut> {
    if (!scope.onReader) return this.#takeOn(scope, limits, text, values)
    return this.#takeOnReader(scope, limits, text, values)
  }

  /**
   * Opens one connection of `scope`'s login for no call, parked idle for the next checkout: finds
   * the login (the credentials provider asked, within `limits`), then lets the login open it. Rejects
   * when the login cannot be found.
   */
  async prewarm(scope: Scope, limits: CallLimits): Promise<PrewarmOutcome> {
    if (this.#ctx.ended) return { outcome: 'skipped', reason: 'ended' }
    const use = this.#table.useFor(scope)
    const login = this.#logins.of(use) ?? (await this.#lookUpLogin(use, limits))
    return login.prewarm(use)
  }

  // Finds (or makes) the scope's login; meanwhile the scope counts as in use, so that LRU and TTL
  // do not end it.
  async #lookUpLogin(use: ScopeUse, limits: CallLimits): Promise<LoginPool> {
    use.arriving++
    try {
      return await this.#logins.find(use, limits)
    } finally {
      use.arriving--
    }
  }

  // A reader's scope: on the writer while its reader is skipped, and sent there when it fails.
  // Apart from take(): a closure there would cost the writer's path a context per call.
  #takeOnReader(scope: Scope, limits: CallLimits, text?: string, values?: unknown[]): Promise<CheckedOut> {
    return this.#readers.route(scope, limits, (on) => this.#takeOn(on, limits, text, values))
  }

  #takeOn(
    scope: Scope,
    limits: CallLimits,
    text?: string,
    values?: unknown[],
  ): CheckedOut | Promise<CheckedOut> {
    if (this.#ctx.ended) throw new PoolsEndedError('TenantPools has been ended: build a new instance')
    // Taken before the first await, while the caller's frames are still on the stack.
    const acquiredAt =
      this.#options.leakDetectionMs > 0 ? new Error('connection acquired here').stack : undefined
    const now = this.#options.clock.now()
    this.#table.sweepIfDue(now)
    const use = this.#table.useFor(scope)
    const login = this.#logins.of(use)
    if (login) {
      // As #acquire: nothing is taken once the deadline has passed.
      this.#ctx.remaining(limits, 'it got a connection')
      const conn = login.acquireNow(use, now)
      if (conn) {
        const ready = this.#readiness.readyOrRelease(login, use, conn, limits, now, text, values)
        if (ready instanceof Promise) {
          return this.#takeAsync(scope, use, login, limits, now, acquiredAt, text, values, conn, ready)
        }
        if (ready) return this.#checkedOut(scope, use, login, conn, ready, limits, 0, acquiredAt)
        this.#replace(login, conn, limits)
      }
    }
    return this.#takeAsync(scope, use, login, limits, now, acquiredAt, text, values)
  }

  // The rest of a checkout that has to wait: for the scope's login, a connection, or its check
  // (`conn` taken already, with its `pending` check).
  async #takeAsync(
    scope: Scope,
    use: ScopeUse,
    found: LoginPool | undefined,
    limits: CallLimits,
    now: number,
    acquiredAt: string | undefined,
    text: string | undefined,
    values: unknown[] | undefined,
    conn?: PooledConnection,
    pending?: Promise<Ready>,
  ): Promise<CheckedOut> {
    const login = found ?? (await this.#lookUpLogin(use, limits))
    let taken = conn
    let check: Ready | Promise<Ready> | undefined = pending
    for (;;) {
      if (taken === undefined || check === undefined) {
        taken = await this.#acquire(login, use, limits)
        const at = this.#options.clock.now()
        check = this.#readiness.readyOrRelease(login, use, taken, limits, at, text, values)
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
    ready: Ready,
    limits: CallLimits,
    waitedMs: number,
    acquiredAt: string | undefined,
  ): CheckedOut {
    let leftMs: number
    try {
      leftMs = this.#ctx.remaining(limits, 'its first statement was sent')
    } catch (err) {
      login.release(conn)
      throw err
    }
    // Its first checkout: opened for this call (or for another's, and given to this one).
    const opened = conn.checkouts++ === 0 && !conn.prewarmed
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

  // A checkout waits at most the connect timeout, or until the deadline if that comes first.
  async #acquire(login: LoginPool, use: ScopeUse, limits: CallLimits): Promise<PooledConnection> {
    const left = this.#ctx.remaining(limits, 'it got a connection')
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

  // As HikariCP's leakDetectionThreshold: a connection held too long is reported with the stack of
  // the code that took it. The holder keeps it; this only tells someone where to look.
  #watchForLeak(key: string, conn: PooledConnection, acquiredAt: string): void {
    const ms = this.#options.leakDetectionMs
    conn.leakTimer = setTimeout(() => {
      this.#counters.leaksSuspected++
      this.#ctx.log.warn('connection held longer than leakDetectionMs: possible leak', {
        poolKey: key,
        heldMs: ms,
        acquiredAt,
      })
    }, ms).unref()
  }
}
