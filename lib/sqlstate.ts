// Classifies database errors by SQLSTATE (and Node socket codes), never by message text.

/** SQLSTATEs that mean the server ended this session: the connection is gone, the statement never ran. */
const SESSION_ENDED = new Set([
  '57P01', // admin_shutdown (pg_terminate_backend, server shutdown)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '57P05', // idle_session_timeout
])

/** Socket-level codes Node reports when the peer vanished. */
const SOCKET_LOST = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTCONN'])

/**
 * The SQLSTATE (or Node's socket code) of an error, if it has one: classify database errors by it,
 * never by message text.
 *
 * @example
 * if (sqlState(err) === '23505') throw new HttpError(409, 'DUPLICATE', 'That order exists already')
 */
export const sqlState = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/**
 * True when the error means the connection itself is unusable (as opposed to a failed statement).
 * Besides the codes above, any error the server raised at FATAL or PANIC severity ends the session,
 * whatever its SQLSTATE (25P04 transaction_timeout, recovery conflicts on a replica …).
 *
 * @example
 * if (isConnectionLost(err)) log.warn('connection lost', { code: sqlState(err) })
 */
export const isConnectionLost = (err: unknown): boolean => {
  const severity = (err as { severity?: unknown } | null)?.severity
  if (severity === 'FATAL' || severity === 'PANIC') return true
  const code = sqlState(err)
  if (code === undefined) return false
  return SESSION_ENDED.has(code) || code.startsWith('08') || SOCKET_LOST.has(code)
}

/** A socket-level loss (Node's code): the peer vanished, reset the connection, or never answered. */
export const isSocketLost = (err: unknown): boolean => SOCKET_LOST.has(sqlState(err) ?? '')

/**
 * The peer answered what was sent with a reset (or the socket was already closed for writing):
 * met before any byte of an answer arrived, the statement was never read by a live backend (one that
 * read it and then died closes with FIN, not RST).
 */
export const isSocketReset = (err: unknown): boolean => {
  const code = sqlState(err)
  return code === 'ECONNRESET' || code === 'EPIPE'
}

/**
 * True when the server ended the session on purpose (terminate, idle timeout): expected, not
 * alarming.
 *
 * @example
 * if (isServerKill(err)) log.info('session ended by the server') // else log.error
 */
export const isServerKill = (err: unknown): boolean => SESSION_ENDED.has(sqlState(err) ?? '')

export const TOO_MANY_CONNECTIONS = '53300'
export const INVALID_PASSWORD = '28P01'
export const PROTOCOL_VIOLATION = '08P01'
export const QUERY_CANCELED = '57014'

/**
 * Raised by a moving tenant's fence: the write was refused before it changed anything (ours, see
 * fence.ts).
 *
 * @example
 * if (sqlState(err) === TENANT_FENCED) throw new TenantMovingError('acme is moving', { cause: err })
 */
export const TENANT_FENCED = 'TPM01'
/** A tenant's schema or table is not where the caller looked: its placement may have changed. */
export const UNDEFINED_TABLE = '42P01'
export const INVALID_SCHEMA_NAME = '3F000'
/** lock_timeout ran out. */
export const LOCK_NOT_AVAILABLE = '55P03'
/** The server broke a deadlock by ending this transaction. */
export const DEADLOCK_DETECTED = '40P01'
