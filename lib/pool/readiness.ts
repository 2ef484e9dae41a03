// Readiness: whether a connection taken from its login may be handed to a scope's caller as it is,
// and the only writer of a connection's session state (its binding, what is known of its
// search_path and read-only setting). It settles a connection that may have crossed a freeze (one
// full poll phase, so that a FATAL the server sent meanwhile is read first), pings one idle long
// enough or suspect, resets and rebinds one bound to another scope or asserts its search_path, and
// says what the caller's own statement may carry instead (a Ride), so that the warm path pays no
// round trip. It also keeps the suspicion: when a statement or ping last went unanswered.
import type { resolveOptions } from '../config/options'
import { isServerKill } from '../sqlstate'
import type { CallLimits } from '../types'
import { combinable } from './bound-query'
import type { PooledConnection } from './connection'
import type { LoginPool } from './login-pool'
import type { ScopeUse } from './scope-use'
import { forgetPreparedStatements, PROXY_SAFE_RESET_SQL, searchPathSelects } from './session'
import { within } from './within'

// A connection idle at least this long, or freed in an earlier invocation and handed to a caller
// whose statement could not be sent again, waits one full poll phase for a pending server kill
// before it is handed out. Back-to-back calls within one invocation skip it.
const SETTLE_AFTER_IDLE_MS = 20

/** Released with this, a connection is destroyed; it failed the liveness check. */
export const STALE = new Error('connection failed its liveness check')

/** What readiness reads of the registry's shared state (registry/context.ts), and the one thing it asks of it. */
export interface ReadinessContext {
  readonly options: Pick<
    ReturnType<typeof resolveOptions>,
    'proxySafe' | 'validateAfterIdleMs' | 'validationTimeoutMs' | 'clock'
  >
  readonly counters: {
    connectionsPinged: number
    validationTimeouts: number
    connectionsRebound: number
    sessionsReset: number
  }
  /** Invocations started: a connection freed in an earlier one may have been frozen since. */
  readonly invocation: number
  /** Milliseconds left before the call's deadline; throws once it has passed. */
  remaining(limits: CallLimits, what: string): number
}

/** What a statement carries ahead of it in its own round trip. */
export interface Ride {
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

/** Whether a connection may be handed over: no (false), yes (true), or yes with what its statement must carry. */
export type Ready = boolean | Ride

// An immediate runs in the check phase of the current loop turn, before the next poll phase; one
// scheduled from there runs in the next turn's check phase, after that poll phase has read the sockets.
// Whoever asks before the first immediate has run shares the wait (a request's parallel statements,
// each on a connection of its own): for each of them, a full poll phase still lies ahead of its end.
let settling: Promise<void> | undefined
export const settleOnePollPhase = (): Promise<void> => {
  if (settling !== undefined) return settling
  const wait = new Promise<void>((resolve) =>
    setImmediate(() => {
      if (settling === wait) settling = undefined
      setImmediate(resolve)
    }),
  )
  settling = wait
  return wait
}

export class Readiness {
  readonly #ctx: ReadinessContext
  readonly #options: ReadinessContext['options']
  readonly #counters: ReadinessContext['counters']
  // Closes every login's idle connections (the registry's: they are not this layer's to know).
  readonly #closeAllIdle: () => void
  // When a statement or a ping last went unanswered: connections idle since before then are pinged
  // before they are handed out, whatever their idle time, since their server may be gone too.
  #suspectSince = -1

  constructor(ctx: ReadinessContext, closeAllIdle: () => void) {
    this.#ctx = ctx
    this.#options = ctx.options
    this.#counters = ctx.counters
    this.#closeAllIdle = closeAllIdle
  }

  // Whether `conn` may be handed to `use` as it is, once reset or its binding asserted if it needs
  // it. A deadline that passes meanwhile must not strand the connection: it goes back first. Decided
  // at once when no round trip or poll phase is needed (the warm path), else a promise. RIDE_RESET
  // or RIDE_ASSERT: the caller's statement can carry what is due in its own round trip.
  readyOrRelease(
    login: LoginPool,
    use: ScopeUse,
    conn: PooledConnection,
    limits: CallLimits,
    now: number,
    text: string | undefined,
    values: unknown[] | undefined,
  ): Ready | Promise<Ready> {
    // `lost` is set synchronously by the error event, so checking it costs nothing. Even a fresh
    // connection can arrive dead: frozen mid-connect, its FATAL was read with its ReadyForQuery.
    if (conn.lost) return false
    // Every connection reaches a caller through the pool's offer, which stamps idleSince, a new one too.
    const idleFor = now - conn.idleSince
    // Idle since before a statement or ping went unanswered: its server may be gone too.
    const suspect = conn.idleSince <= this.#suspectSince
    const crossed = conn.freedInInvocation !== this.#ctx.invocation
    // A connection handed to a caller's callback (withClient, transaction, a pg.Pool client) that
    // was freed before this invocation began is pinged: a freeze may have lost its server's FATAL,
    // and nothing could send the callback's first statement again. A query() needs no ping: one that
    // meets such a dead socket is sent again (Calls' queryOn).
    let ping = suspect || idleFor >= this.#options.validateAfterIdleMs || (text === undefined && crossed)
    // A query() on such a connection, idle long enough to be pinged, carries the ping instead: the
    // server's first answer must come within the validation timeout (Calls' queryOn). The round trip
    // is saved at every thaw; the price is paid only where the server went silent during the freeze,
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
    // A query() that the server can be asked again needs no settle for having crossed a possible
    // freeze: a FATAL read before any answer to it sends it again on another connection (Calls'
    // queryOn, which watches for exactly that). A callback's statements cannot be sent again.
    const settle =
      idleFor >= SETTLE_AFTER_IDLE_MS || (crossed && (text === undefined || !combinable(text, values)))
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
    // Settled or not, a connection idle past validateAfterIdleMs (which may be under 20 ms) is pinged.
    if (!settle && !suspect && !ping) return true
    return this.#releasedIfThrows(login, conn, this.#isAlive(conn, ping, limits), true)
  }

  // A caller's statement ran: on a server that does not report the search_path, it may now point
  // anywhere, and is asserted before the next statement. Not in proxy-safe mode, where no SET may
  // assert it and the role's privileges bound what a caller's own change can reach.
  statementRan(conn: PooledConnection): void {
    if (conn.reportedSearchPath === undefined && !this.#options.proxySafe) conn.searchPathUnknown = true
  }

  // The session was reset in full and bound to `use`.
  bound(conn: PooledConnection, use: ScopeUse, limits: CallLimits): void {
    conn.needsReset = false
    conn.searchPathUnknown = false
    if (conn.boundTo !== use) {
      conn.boundTo = use
      this.#counters.connectionsRebound++
      if (limits.measure) limits.measure.connectionsRebound++
    } else this.#counters.sessionsReset++
  }

  /** Every connection idle since before now may be dead: each is pinged before its next use. */
  suspectIdle(): void {
    this.#suspectSince = this.#options.clock.now()
  }

  // A liveness check went unanswered: every connection idle since before now is pinged before its
  // next use, and the idle ones, which would each cost a caller the same wait, are closed now.
  serverSilent(): void {
    this.#counters.validationTimeouts++
    this.suspectIdle()
    this.#closeAllIdle()
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
    ok: Ready,
  ): Promise<Ready> {
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
    if (full) this.bound(conn, use, limits)
    else conn.searchPathUnknown = false
    return true
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
      this.#ctx.remaining(limits, 'it got a connection'),
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
      if (unanswered !== undefined && err === unanswered) this.serverSilent()
      else if (isServerKill(err)) conn.killedBy = err as Error
      return false
    }
  }
}
