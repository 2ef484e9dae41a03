// Calls: what a caller does with a checked-out connection. One statement (query), a callback with
// the client (withClient), a transaction around it, or a lease until release() (a pg.Pool handle's
// connect). Each is bounded client-side (the statement timeout plus a margin, the call's deadline);
// a statement unanswered is given up on and its connection destroyed. The first statement since a
// possible freeze that meets a reset before any answer is sent again on another connection. Errors
// of a lost connection reach the caller typed (ConnectionLostError, saying whether it may have run),
// and a connection goes back to its login only once the server has answered all that was sent on it.
import type { Client, ClientBase, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg'
import type { CheckoutObserver } from '../adapters/pg-pool'
import { ConnectionLostError, StatementTimeoutError, TenantPoolsError } from '../errors'
import { AnswerWatch } from '../pool/answer-watch'
import { boundQuery, combinable } from '../pool/bound-query'
import type { PooledConnection } from '../pool/connection'
import type { LoginPool } from '../pool/login-pool'
import { type Readiness, STALE } from '../pool/readiness'
import { forgetPreparedStatements, maybeChangesSession } from '../pool/session'
import { within } from '../pool/within'
import { isConnectionLost, isServerKill, isSocketLost, isSocketReset, sqlState } from '../sqlstate'
import type { CallLimits, Scope } from '../types'
import type { CheckedOut, Checkout } from './checkout'
import type { RegistryContext } from './context'
import { holding } from './held'
import type { Readers } from './readers'

// Statements sent again after meeting a reset with no answer (queryOn). After the first, every
// idle connection is pinged before use (suspect): one more attempt is the usual case.
const UNANSWERED_RETRIES = 3

export class Calls {
  readonly #ctx: RegistryContext
  readonly #options: RegistryContext['options']
  readonly #counters: RegistryContext['counters']
  readonly #checkout: Checkout
  readonly #readiness: Readiness
  readonly #readers: Readers

  constructor(ctx: RegistryContext, checkout: Checkout, readiness: Readiness, readers: Readers) {
    this.#ctx = ctx
    this.#options = ctx.options
    this.#counters = ctx.counters
    this.#checkout = checkout
    this.#readiness = readiness
    this.#readers = readers
  }

  // Not async itself: the writer's path (the usual one) costs no extra promise.
  // `observer`: a pg.Pool handle's, told of the checkout and the release (its acquire and release events).
  query<R extends QueryResultRow>(
    scope: Scope,
    text: string | QueryConfig,
    values: unknown[] | undefined,
    limits: CallLimits,
    observer?: CheckoutObserver,
  ): Promise<QueryResult<R>> {
    if (!scope.onReader) return this.#queryOn<R>(scope, text, values, limits, observer)
    return this.#queryOnReader<R>(scope, text, values, limits, observer)
  }

  // Apart from query(): a closure there would cost the writer's path a context per call.
  #queryOnReader<R extends QueryResultRow>(
    scope: Scope,
    text: string | QueryConfig,
    values: unknown[] | undefined,
    limits: CallLimits,
    observer: CheckoutObserver | undefined,
  ): Promise<QueryResult<R>> {
    // A read that lost its replica mid-statement ran nowhere else: it is run again on the writer.
    return this.#readers.orWriter(scope, limits, (on) => this.#queryOn<R>(on, text, values, limits, observer))
  }

  async withClient<T>(
    scope: Scope,
    fn: (client: ClientBase) => Promise<T>,
    limits: CallLimits,
    commit?: { sent: boolean },
  ): Promise<T> {
    const got = this.#checkout.take(scope, limits)
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
    await this.#releaseWhenReady(login, conn, undefined, true)
    return result
  }

  transaction<T>(scope: Scope, fn: (client: ClientBase) => Promise<T>, limits: CallLimits): Promise<T> {
    const commit = { sent: false }
    return this.withClient(
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
            this.#ctx.log.warn('ROLLBACK failed', { poolKey: scope.key, sqlState: sqlState(rollbackErr) })
          }
          throw err
        }
      },
      limits,
      commit,
    )
  }

  // A connection lent until its holder calls release() (TenantPgPool.connect): release() gives it
  // back to be reset before anyone uses it again, release(err) or release(true) destroys it.
  async lease(scope: Scope, limits: CallLimits): Promise<PoolClient> {
    const got = this.#checkout.take(scope, limits)
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
        void this.#releaseWhenReady(login, conn, undefined, true)
      }
    }
    return client
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
    const got = this.#checkout.take(
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
    const crossed = conn.freedInInvocation !== this.#ctx.invocation
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
      // validation timeout, as a ping's would. An answer begun in time waives the bound: a slow
      // statement is the statement timeout's business.
      if (ride?.probe) {
        this.#counters.connectionsPinged++
        const answered = () => bytesRead(conn.client) !== readBefore
        const noAnswer = () => {
          silent = new ConnectionLostError(
            `No answer from the server within ${this.#options.validationTimeoutMs} ms (validationTimeoutMs) ` +
              `to the first statement on a connection of pool ${scope.key} since a possible freeze; it may have run`,
            { mayHaveRun: !scope.readOnly },
          )
          return silent
        }
        running = within(running, this.#options.validationTimeoutMs, noAnswer, answered)
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
        this.#readiness.bound(conn, out.use, limits)
      }
    } catch (err) {
      watch?.stop()
      this.#readiness.statementRan(conn)
      let released: Promise<void> | undefined
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
        released = this.#releaseWhenReady(
          login,
          conn,
          isConnectionLost(err) || conn.lost ? err : undefined,
          reset,
        )
      }
      // The caller hears of the failure once its connection is back (or destroyed), as it does of a
      // success: pg reports the error before the ReadyForQuery that may arrive in a later chunk, and
      // a caller that checks the stats, or prewarms, must not find the connection still held.
      await released
      // The first statement on a connection since a possible freeze met a reset before any byte of
      // an answer: its backend was gone (a freeze lost its FATAL and FIN, and the server answers
      // the write with an RST), and no live backend read it. It runs on another connection; a few
      // times at most, as every idle one may have died the same way. This assumes nothing between
      // here and the server forwards a statement and then resets the client (docs/behaviour.md,
      // "Freeze and thaw"); within an invocation a reset is reported (as may have run), never sent
      // again. Or its backend's FATAL came first (ended while the environment was frozen, the FATAL
      // resent by TCP after the thaw): that backend never read it, and whatever it might have begun
      // its end rolled back. Not a statement that may commit by itself (a procedure, a DO block) or
      // that the extended protocol cannot carry, where that could not be said.
      const unanswered =
        crossed &&
        ((isSocketReset(err) && bytesRead(conn.client) === readBefore) ||
          (endedSession(err) && watch?.answered === false && combinable(text, values)))
      if (unanswered && attempt <= UNANSWERED_RETRIES) {
        // Every connection idle since before now may have died the same way: each is pinged before
        // its next use, so the statement goes out on a live one.
        this.#readiness.suspectIdle()
        this.#counters.connectionsReplaced++
        if (limits.measure) limits.measure.connectionsReplaced++
        return this.#queryOn<R>(scope, query, values, limits, observer, attempt + 1)
      }
      throw typed(err, conn, !unanswered && !scope.readOnly)
    }
    watch?.stop()
    this.#readiness.statementRan(conn)
    try {
      observer?.released(undefined, conn.client as PoolClient)
    } finally {
      // Answered in full (pg settles a success at its ReadyForQuery): given back at once.
      void this.#releaseWhenReady(login, conn, undefined, reset)
    }
    return result
  }

  // A statement that the server does not answer: its connection is destroyed (the server may still
  // run it, and the socket may be dead), and idle connections become suspect.
  #statementTimedOut(out: CheckedOut, err: StatementTimeoutError): never {
    this.#counters.statementTimeouts++
    this.#readiness.suspectIdle()
    this.#abandon(out, err, 'statement unanswered: connection destroyed')
  }

  // The first statement since a possible freeze got no answer at all within the validation timeout,
  // as an unanswered ping: its server is gone or unreachable, and so, likely, are the other idle
  // connections to it. The statement itself may have reached it: the caller is told so.
  #firstAnswerMissing(out: CheckedOut, err: ConnectionLostError): never {
    this.#readiness.serverSilent()
    this.#abandon(out, err, 'first statement since a possible freeze unanswered: connection destroyed')
  }

  // The connection of a statement given up on is destroyed (the server may still run it), and the
  // caller told whether it may have.
  #abandon(out: CheckedOut, err: StatementTimeoutError | ConnectionLostError, message: string): never {
    out.conn.lost = true
    out.login.release(out.conn, err)
    this.#ctx.log.warn(message, { poolKey: out.use.key, mayHaveRun: err.mayHaveRun })
    throw err
  }

  // Gives a connection back once the server has answered everything sent on it. pg settles a
  // failed statement at its ErrorResponse, before the ReadyForQuery that tells the session's
  // transaction status (and after which the search_path report is complete), and a statement given
  // up on by pg's own query_timeout may still be running: released before then, the next caller's
  // statements would queue behind it, in whatever transaction it left open. It waits (within the
  // validation timeout, else the connection is destroyed); the usual case, already answered, costs
  // nothing.
  // Settles once it is given back.
  #releaseWhenReady(login: LoginPool, conn: PooledConnection, err: unknown, reset: boolean): Promise<void> {
    if (err !== undefined || conn.lost || readyForQuery(conn.client)) {
      login.release(conn, err, reset)
      return Promise.resolve()
    }
    return untilReady(conn.client, this.#options.validationTimeoutMs).then((ready) =>
      login.release(conn, ready ? undefined : STALE, reset),
    )
  }
}

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
