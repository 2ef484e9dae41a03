// The library's own errors: each class's stable `code` (what callers and the HTTP mapping switch
// on), its `name`, the fields it carries, its cause, and what it says when not told.
import {
  ConnectError,
  ConnectionLostError,
  CredentialsError,
  DeadlineExceededError,
  HttpError,
  InvalidOptionsError,
  InvalidTenantError,
  PoolExhaustedError,
  PoolsEndedError,
  SecretUnreadableError,
  StatementTimeoutError,
  TenantMovingError,
  TenantPoolsError,
  UnknownClusterError,
} from '../lib'

describe('Module: errors', () => {
  it.each<[TenantPoolsError, string, string]>([
    [new InvalidTenantError('m'), 'InvalidTenantError', 'INVALID_TENANT'],
    [new InvalidOptionsError('m'), 'InvalidOptionsError', 'INVALID_OPTIONS'],
    [new UnknownClusterError('b'), 'UnknownClusterError', 'UNKNOWN_CLUSTER'],
    [new TenantMovingError('m'), 'TenantMovingError', 'TENANT_MOVING'],
    [new PoolExhaustedError('m'), 'PoolExhaustedError', 'POOL_EXHAUSTED'],
    [new ConnectError('m'), 'ConnectError', 'CONNECT_FAILED'],
    [new PoolsEndedError('m'), 'PoolsEndedError', 'POOLS_ENDED'],
    [new CredentialsError('m'), 'CredentialsError', 'CREDENTIALS_FAILED'],
    [new SecretUnreadableError('s', 'r'), 'SecretUnreadableError', 'SECRET_UNREADABLE'],
    [new ConnectionLostError('m'), 'ConnectionLostError', 'CONNECTION_LOST'],
    [new DeadlineExceededError('m'), 'DeadlineExceededError', 'DEADLINE_EXCEEDED'],
    [new StatementTimeoutError('m', false), 'StatementTimeoutError', 'STATEMENT_TIMEOUT'],
  ])('%s is named %s, with code %s, and is a TenantPoolsError', (err, name, code) => {
    expect(err.name).toBe(name)
    expect(err.code).toBe(code)
    expect(err).toBeInstanceOf(TenantPoolsError)
    expect(err).toBeInstanceOf(Error)
  })

  it('keeps the cause it is given', () => {
    const cause = new Error('underneath')
    expect(new ConnectError('m', { cause }).cause).toBe(cause)
    expect(new HttpError(503, 'X', 'm', { cause }).cause).toBe(cause)
    expect(new SecretUnreadableError('s', 'r', { cause }).cause).toBe(cause)
    expect(new ConnectionLostError('m', { cause }).cause).toBe(cause)
    expect(new StatementTimeoutError('m', true, { cause }).cause).toBe(cause)
  })

  it('names the unknown cluster, cut to 64 characters, in its message and field', () => {
    const err = new UnknownClusterError('b')
    expect(err.cluster).toBe('b')
    expect(err.message).toBe('Unknown cluster "b": it is not in the clusters option')
    const long = 'x'.repeat(100)
    expect(new UnknownClusterError(long).message).toBe(
      `Unknown cluster "${'x'.repeat(64)}": it is not in the clusters option`,
    )
  })

  it('names the secret and the reason, never the secret’s value', () => {
    const err = new SecretUnreadableError('arn:aws:secretsmanager:…:db', 'no password')
    expect(err.secretId).toBe('arn:aws:secretsmanager:…:db')
    expect(err.message).toBe('Secret arn:aws:secretsmanager:…:db is unusable: no password')
  })

  it('carries an HTTP status and the code it is given', () => {
    const err = new HttpError(404, 'TENANT_NOT_FOUND', 'Unknown tenant')
    expect(err).toMatchObject({ status: 404, code: 'TENANT_NOT_FOUND', message: 'Unknown tenant' })
    expect(err.name).toBe('HttpError')
  })

  it('says whether the call may have run: a lost connection’s may unless told, a deadline’s not', () => {
    expect(new ConnectionLostError('m').mayHaveRun).toBe(true)
    expect(new ConnectionLostError('m', {}).mayHaveRun).toBe(true)
    expect(new ConnectionLostError('m', { mayHaveRun: false }).mayHaveRun).toBe(false)
    expect(new StatementTimeoutError('m', false).mayHaveRun).toBe(false)
    expect(new StatementTimeoutError('m', true).mayHaveRun).toBe(true)
    // A deadline passed before any statement of the call was sent.
    expect(new DeadlineExceededError('m').mayHaveRun).toBe(false)
  })
})
