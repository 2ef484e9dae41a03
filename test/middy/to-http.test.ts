import {
  ConnectError,
  ConnectionLostError,
  CredentialsError,
  HttpError,
  InvalidTenantError,
  PoolExhaustedError,
  PoolsEndedError,
  SecretUnreadableError,
  toHttp,
} from '../../lib'

const pgError = (
  code: string,
  message = 'duplicate key value violates unique constraint "orders_reference_key"',
) =>
  Object.assign(new Error(message), {
    code,
    severity: 'ERROR',
    detail: 'Key (reference)=(secret-ref) already exists.',
  })

describe('Function: toHttp', () => {
  it.each([
    [new InvalidTenantError('bad'), 400, 'INVALID_TENANT'],
    [new HttpError(404, 'NOT_FOUND', 'No such order'), 404, 'NOT_FOUND'],
    [
      Object.assign(new Error('Invalid or malformed JSON was provided'), { statusCode: 422, expose: true }),
      422,
      'MALFORMED_JSON',
    ],
    [
      Object.assign(new Error('Unsupported Media Type'), { statusCode: 415, expose: true }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [pgError('23505'), 409, 'CONFLICT'],
    [pgError('57014', 'canceling statement due to statement timeout'), 504, 'STATEMENT_TIMEOUT'],
    [pgError('22P02', 'invalid input syntax for type uuid'), 400, 'INVALID_VALUE'],
    [pgError('22003', 'value out of range for type integer'), 400, 'INVALID_VALUE'],
    [pgError('22021', 'invalid byte sequence for encoding "UTF8": 0x00'), 400, 'INVALID_VALUE'],
  ])('%p → %i %s', (err, status, code) => {
    expect(toHttp(err)).toMatchObject({ status, code })
  })

  it.each([
    [new PoolExhaustedError('all in use'), 'POOL_EXHAUSTED'],
    [new ConnectError('refused'), 'DATABASE_UNAVAILABLE'],
    [new ConnectionLostError('lost', { mayHaveRun: false }), 'DATABASE_UNAVAILABLE'],
    [new CredentialsError('provider failed'), 'CREDENTIALS_UNAVAILABLE'],
    [new SecretUnreadableError('app/tenants/x', 'it does not exist'), 'CREDENTIALS_UNAVAILABLE'],
    [new PoolsEndedError('ended'), 'DATABASE_UNAVAILABLE'],
    [pgError('53300', 'sorry, too many clients already'), 'DATABASE_UNAVAILABLE'],
    [pgError('57P01', 'terminating connection due to administrator command'), 'DATABASE_UNAVAILABLE'],
    [pgError('08006', 'connection failure'), 'DATABASE_UNAVAILABLE'],
    [pgError('40001', 'could not serialize access'), 'DATABASE_UNAVAILABLE'],
  ])('%p → 503 %s with Retry-After', (err, code) => {
    expect(toHttp(err)).toMatchObject({ status: 503, code, headers: { 'retry-after': '1' } })
  })

  it('answers anything else with a bare 500 that shows no SQL, detail or stack', () => {
    const answer = toHttp(pgError('42601', 'syntax error at or near "SELEC"'))
    expect(answer).toEqual({ status: 500, code: 'INTERNAL', message: 'Internal error', headers: {} })
    expect(toHttp(new TypeError('x is undefined'))).toMatchObject({ status: 500, message: 'Internal error' })
  })

  it('does not leak a database error’s detail in a mapped answer', () => {
    expect(JSON.stringify(toHttp(pgError('23505')))).not.toContain('secret-ref')
  })

  it('ignores a statusCode that is not marked exposable', () => {
    expect(toHttp(Object.assign(new Error('internal thing'), { statusCode: 400 }))).toMatchObject({
      status: 500,
    })
  })
})

describe('Function: toHttp, a lost connection', () => {
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
  const cases: Array<[Error, number, string]> = [
    [new ConnectionLostError('lost', { cause: reset, mayHaveRun: true }), 504, 'OUTCOME_UNKNOWN'],
    [new ConnectionLostError('lost', { cause: reset, mayHaveRun: false }), 503, 'DATABASE_UNAVAILABLE'],
    ...['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'].map((code): [Error, number, string] => [
      Object.assign(new Error(code), { code }),
      503,
      'DATABASE_UNAVAILABLE',
    ]),
  ]
  it.each(cases)('%p → %i %s with Retry-After, never a 500', (err, status, code) => {
    expect(toHttp(err)).toMatchObject({ status, code, headers: { 'retry-after': '1' } })
  })
})
