// Every error this library throws on purpose. Each has a stable `code` that callers (and the
// HTTP layer) switch on, so nothing downstream has to read message text.

/**
 * The base of every error this library throws on purpose: `name` is the class's, `code` a stable
 * string to switch on (never the message), and a wrapped error is the `cause`.
 *
 * @example
 * try {
 *   await pools.query(tenantId, 'SELECT 1')
 * } catch (err) {
 *   if (err instanceof TenantPoolsError) log.warn(err.message, { code: err.code }) // e.g. POOL_EXHAUSTED
 *   throw err
 * }
 */
export abstract class TenantPoolsError extends Error {
  abstract readonly code: string
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/**
 * The tenant id failed validation; no SQL was sent. Like every error of the library, a
 * TenantPoolsError with a stable `code`.
 *
 * @example
 * await expect(pools.query('Not A Tenant!', 'SELECT 1')).rejects.toBeInstanceOf(InvalidTenantError)
 */
export class InvalidTenantError extends TenantPoolsError {
  readonly code = 'INVALID_TENANT'
}

/**
 * An option was missing, unknown or out of range when the registry was built. Like every error of
 * the library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * expect(() => new TenantPools({ maxPerScope: 0 })).toThrow(InvalidOptionsError)
 */
export class InvalidOptionsError extends TenantPoolsError {
  readonly code = 'INVALID_OPTIONS'
}

/**
 * A scope asked for a cluster that the registry was not configured with. Like every error of the
 * library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * try {
 *   pools.forTenant('acme', { cluster: 'eu-2' })
 * } catch (err) {
 *   if (err instanceof UnknownClusterError) log.error('not in the clusters option', { cluster: err.cluster })
 *   throw err
 * }
 */
export class UnknownClusterError extends TenantPoolsError {
  readonly code = 'UNKNOWN_CLUSTER'
  readonly cluster: string
  constructor(cluster: string) {
    super(`Unknown cluster "${String(cluster).slice(0, 64)}": it is not in the clusters option`)
    this.cluster = cluster
  }
}

/**
 * The tenant is being moved to another cluster: its writes are refused until the move ends. Like
 * every error of the library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * try {
 *   await db.query(text, values)
 * } catch (err) {
 *   if (err instanceof TenantMovingError) return jsonResponse(503, { error: err.code }) // try again shortly
 *   throw err
 * }
 */
export class TenantMovingError extends TenantPoolsError {
  readonly code = 'TENANT_MOVING'
}

/**
 * No connection became free within the connect timeout: the pool or the environment budget is
 * spent. Like every error of the library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * try {
 *   await db.query(text, values)
 * } catch (err) {
 *   if (err instanceof PoolExhaustedError) return jsonResponse(503, { error: err.code }) // POOL_EXHAUSTED
 *   throw err
 * }
 */
export class PoolExhaustedError extends TenantPoolsError {
  readonly code = 'POOL_EXHAUSTED'
}

/**
 * Opening a connection failed or took longer than the connect timeout. Like every error of the
 * library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * try {
 *   await db.query(text, values)
 * } catch (err) {
 *   if (err instanceof ConnectError) log.error('database unreachable', { cause: String(err.cause) })
 *   throw err
 * }
 */
export class ConnectError extends TenantPoolsError {
  readonly code = 'CONNECT_FAILED'
}

/**
 * The registry, or the pool a caller was waiting on, has been ended. Like every error of the
 * library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * await pools.end()
 * await expect(pools.query('acme', 'SELECT 1')).rejects.toBeInstanceOf(PoolsEndedError)
 */
export class PoolsEndedError extends TenantPoolsError {
  readonly code = 'POOLS_ENDED'
}

/**
 * The credentials provider threw or returned something unusable. Like every error of the library,
 * a TenantPoolsError with a stable `code`.
 *
 * @example
 * try {
 *   await db.query(text, values)
 * } catch (err) {
 *   if (err instanceof CredentialsError && err.cause instanceof SecretUnreadableError) log.error('bad secret', { secretId: err.cause.secretId })
 *   throw err
 * }
 */
export class CredentialsError extends TenantPoolsError {
  readonly code = 'CREDENTIALS_FAILED'
}

/**
 * A secret could not be read or parsed. Names the secret, never its value. Like every error of the
 * library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * const provider = secretsManagerCredentials({ secretId: 'prod/db' })
 * await provider(request).catch((err) => {
 *   if (err instanceof SecretUnreadableError) log.error('unusable secret', { secretId: err.secretId })
 *   throw err
 * })
 */
export class SecretUnreadableError extends TenantPoolsError {
  readonly code = 'SECRET_UNREADABLE'
  readonly secretId: string
  constructor(secretId: string, reason: string, options?: { cause?: unknown }) {
    super(`Secret ${secretId} is unusable: ${reason}`, options)
    this.secretId = secretId
  }
}

/**
 * A caller-facing error with its HTTP status; `message` is safe to show. Like every error of the
 * library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * if (!body.customer) throw new HttpError(400, 'CUSTOMER_REQUIRED', 'customer is required')
 * // httpErrors() answers it with status 400 and { error: 'CUSTOMER_REQUIRED', message }
 */
export class HttpError extends TenantPoolsError {
  readonly code: string
  readonly status: number
  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.status = status
    this.code = code
  }
}

/**
 * The connection died under a statement and pg reported it without a SQLSTATE ("terminated
 * unexpectedly"). Known by the connection's state, not the message; the statement may or may not
 * have run, so callers must not blindly retry writes. Like every error of the library, a
 * TenantPoolsError with a stable `code`.
 *
 * @example
 * try {
 *   await db.query(text, values)
 * } catch (err) {
 *   if (err instanceof ConnectionLostError && !err.mayHaveRun) return db.query(text, values) // safe to send again
 *   throw err
 * }
 */
export class ConnectionLostError extends TenantPoolsError {
  readonly code = 'CONNECTION_LOST'
  /**
   * False only when the statement cannot have taken effect: the call was read-only, or the
   * connection was found dead before any of it reached a live backend.
   */
  readonly mayHaveRun: boolean
  constructor(message: string, options?: { cause?: unknown; mayHaveRun?: boolean }) {
    super(message, options)
    this.mayHaveRun = options?.mayHaveRun ?? true
  }
}

/**
 * The call's deadline (the invocation's remaining time less a margin, or one the caller gave) came
 * before a connection did, or its signal was aborted. No statement of the call was sent. Like
 * every error of the library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * const db = pools.forTenant('acme', { deadline: Date.now() + 2_000 })
 * await db.query('SELECT 1').catch((err) => {
 *   if (err instanceof DeadlineExceededError) return undefined // nothing was sent
 *   throw err
 * })
 */
export class DeadlineExceededError extends TenantPoolsError {
  readonly code = 'DEADLINE_EXCEEDED'
  readonly mayHaveRun = false
}

/**
 * A statement was sent and no answer came within statementTimeoutMs plus a margin, or before the
 * call's deadline: the server may be gone, or still running it. The connection was destroyed.
 * `mayHaveRun` is false only when the statement cannot have taken effect (a transaction whose
 * COMMIT was never sent); otherwise a write may have committed, and must not be reported as not
 * done. Like every error of the library, a TenantPoolsError with a stable `code`.
 *
 * @example
 * try {
 *   await db.query(text, values)
 * } catch (err) {
 *   if (err instanceof StatementTimeoutError && err.mayHaveRun) return jsonResponse(504, { error: 'OUTCOME_UNKNOWN' })
 *   throw err
 * }
 */
export class StatementTimeoutError extends TenantPoolsError {
  readonly code = 'STATEMENT_TIMEOUT'
  readonly mayHaveRun: boolean
  constructor(message: string, mayHaveRun: boolean, options?: { cause?: unknown }) {
    super(message, options)
    this.mayHaveRun = mayHaveRun
  }
}
