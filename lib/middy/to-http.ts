// Maps any error to the HTTP answer a caller gets: a status, a stable code and a message that is
// safe to show (no stack, no SQL, no server detail). Database errors are classified by SQLSTATE.
import {
  ConnectError,
  ConnectionLostError,
  CredentialsError,
  DeadlineExceededError,
  HttpError,
  InvalidTenantError,
  PoolExhaustedError,
  PoolsEndedError,
  SecretUnreadableError,
  StatementTimeoutError,
  TenantMovingError,
} from '../errors'
import { isConnectionLost, QUERY_CANCELED, sqlState, TENANT_FENCED, TOO_MANY_CONNECTIONS } from '../sqlstate'

/**
 * The HTTP answer for an error: its status, a stable `code`, a message safe to show, and headers
 * (`retry-after` on a 503).
 *
 * @example
 * const { status, code, message, headers } = toHttp(err)
 * return jsonResponse(status, { error: code, message }, headers)
 */
export interface HttpAnswer {
  status: number
  code: string
  message: string
  headers: Record<string, string>
}

const RETRY_AFTER_SECONDS = '1'

// invalid_text_representation, datetime_field_overflow, numeric_value_out_of_range,
// untranslatable_character, character_not_in_repertoire, invalid_datetime_format
const INVALID_VALUE = new Set(['22P02', '22008', '22003', '22P05', '22021', '22007'])

const unavailable = (code: string, message: string): HttpAnswer => ({
  status: 503,
  code,
  message,
  headers: { 'retry-after': RETRY_AFTER_SECONDS },
})

// What middy's own middlewares throw (http-json-body-parser …): a status and an exposable message.
const middyCodes: Record<number, string> = {
  400: 'BAD_REQUEST',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'MALFORMED_JSON',
}

/**
 * Maps an error to its HTTP answer: the library's errors by class, database errors by SQLSTATE,
 * middy's by status; anything else is a 500 that tells nothing. httpErrors() answers with it.
 *
 * @example
 * toHttp(new PoolExhaustedError('busy')) // { status: 503, code: 'POOL_EXHAUSTED', …, headers: { 'retry-after': '1' } }
 */
export function toHttp(err: unknown): HttpAnswer {
  if (err instanceof HttpError)
    return { status: err.status, code: err.code, message: err.message, headers: {} }
  if (err instanceof InvalidTenantError)
    return { status: 400, code: err.code, message: err.message, headers: {} }
  // The database did not answer in time. A write that may have committed says so: the caller must
  // check before retrying it, never assume it was not done.
  if (err instanceof StatementTimeoutError) {
    return err.mayHaveRun
      ? {
          status: 504,
          code: 'OUTCOME_UNKNOWN',
          message: 'The database did not answer in time; the request may or may not have taken effect',
          headers: { 'retry-after': RETRY_AFTER_SECONDS },
        }
      : {
          status: 504,
          code: 'DATABASE_TIMEOUT',
          message: 'The database did not answer in time; the request did not take effect',
          headers: { 'retry-after': RETRY_AFTER_SECONDS },
        }
  }
  if (err instanceof TenantMovingError || sqlState(err) === TENANT_FENCED)
    return unavailable('TENANT_MOVING', 'This tenant is being moved; writes resume shortly')
  if (err instanceof DeadlineExceededError)
    return unavailable('DATABASE_UNAVAILABLE', 'The database is unavailable; retry shortly')
  if (err instanceof PoolExhaustedError)
    return unavailable(err.code, 'Too many requests for this tenant; retry shortly')
  // The login's secret could not be read (missing, no right to it, malformed) or the provider failed:
  // never answered with another login, so the caller is told which part is down.
  if (err instanceof CredentialsError || err instanceof SecretUnreadableError)
    return unavailable('CREDENTIALS_UNAVAILABLE', 'The database login is unavailable; retry shortly')
  // A connection lost under a write that may have committed: the caller must check before retrying.
  if (err instanceof ConnectionLostError && err.mayHaveRun) {
    return {
      status: 504,
      code: 'OUTCOME_UNKNOWN',
      message: 'The connection to the database was lost; the request may or may not have taken effect',
      headers: { 'retry-after': RETRY_AFTER_SECONDS },
    }
  }
  if (err instanceof ConnectError || err instanceof ConnectionLostError || err instanceof PoolsEndedError) {
    return unavailable('DATABASE_UNAVAILABLE', 'The database is unavailable; retry shortly')
  }
  // `?? {}`: a handler may throw or reject with nothing at all, which is still a 500, not a TypeError.
  const middy = (err ?? {}) as { statusCode?: unknown; expose?: unknown; message?: unknown }
  if (
    typeof middy.statusCode === 'number' &&
    middy.statusCode >= 400 &&
    middy.statusCode < 500 &&
    middy.expose
  ) {
    return {
      status: middy.statusCode,
      code: middyCodes[middy.statusCode] ?? 'BAD_REQUEST',
      message: String(middy.message),
      headers: {},
    }
  }
  const code = sqlState(err)
  // A value the server could not take (bad number, date, encoding): the caller's input, not our bug.
  if (code !== undefined && INVALID_VALUE.has(code)) {
    return {
      status: 400,
      code: 'INVALID_VALUE',
      message: 'A value in the request is out of range or malformed',
      headers: {},
    }
  }
  if (code === '23505')
    return {
      status: 409,
      code: 'CONFLICT',
      message: 'A resource with these values already exists',
      headers: {},
    }
  if (code === QUERY_CANCELED)
    return { status: 504, code: 'STATEMENT_TIMEOUT', message: 'The database took too long', headers: {} }
  if (code === TOO_MANY_CONNECTIONS || code === '40001' || code === '40P01' || isConnectionLost(err)) {
    return unavailable('DATABASE_UNAVAILABLE', 'The database is unavailable; retry shortly')
  }
  return { status: 500, code: 'INTERNAL', message: 'Internal error', headers: {} }
}
